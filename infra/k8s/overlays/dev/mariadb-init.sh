#!/bin/bash
# infra/mysql/init.sh for the dev overlay's MariaDB (its client is `mariadb`): one database per
# service, and one user per service with every right on its own database and none elsewhere.
# The image runs it once, on an empty data directory, with the passwords of the Secret
# infrastructure-passwords (tests/test_k8s.py checks the grants are infra/mysql/init.sh's).
set -euo pipefail
mariadb --protocol=socket -uroot -p"$MARIADB_ROOT_PASSWORD" <<SQL
CREATE DATABASE IF NOT EXISTS products CHARACTER SET utf8mb4;
CREATE DATABASE IF NOT EXISTS orders CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'product-service'@'%' IDENTIFIED BY '${PRODUCT_DB_PASSWORD}';
GRANT ALL PRIVILEGES ON products.* TO 'product-service'@'%';
CREATE USER IF NOT EXISTS 'order-service'@'%' IDENTIFIED BY '${ORDER_DB_PASSWORD}';
GRANT ALL PRIVILEGES ON orders.* TO 'order-service'@'%';
SQL
