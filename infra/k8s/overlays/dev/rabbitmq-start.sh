#!/bin/sh
# RabbitMQ loads its topology and the services' users from definitions.json at boot
# (rabbitmq.conf); the users have no password there. Once it runs, this sets theirs from the
# environment (infra/.env) and leaves the mark the healthcheck waits for.
set -eu
mark=/var/lib/rabbitmq/passwords-set
rm -f "$mark"
docker-entrypoint.sh rabbitmq-server &
server=$!
trap 'kill -TERM "$server"; wait "$server"; exit' TERM INT
rabbitmqctl await_startup
rabbitmqctl -q change_password product-service "$PRODUCT_BROKER_PASSWORD"
rabbitmqctl -q change_password order-service "$ORDER_BROKER_PASSWORD"
touch "$mark"
wait "$server"
