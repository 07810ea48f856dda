#!/bin/bash
# One database per service, and one user per service with every right on its own database and
# none elsewhere. The mysql image runs this once, on an empty data directory, with the passwords
# from the environment (infra/.env).
set -euo pipefail
mysql --protocol=socket -uroot -p"$MYSQL_ROOT_PASSWORD" <<SQL
CREATE DATABASE IF NOT EXISTS products CHARACTER SET utf8mb4;
CREATE DATABASE IF NOT EXISTS orders CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'product-service'@'%' IDENTIFIED BY '${PRODUCT_DB_PASSWORD}';
GRANT ALL PRIVILEGES ON products.* TO 'product-service'@'%';
CREATE USER IF NOT EXISTS 'order-service'@'%' IDENTIFIED BY '${ORDER_DB_PASSWORD}';
GRANT ALL PRIVILEGES ON orders.* TO 'order-service'@'%';
SQL
