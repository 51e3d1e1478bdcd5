#!/bin/sh
# The broker container's entrypoint: RabbitMQ as the image starts it, then every
# portal process's own user, with the password its RABBITMQ_<USER>_PASSWORD names,
# and the permissions of deploy/rabbitmq/definitions.json (generated from
# deploy/rabbitmq/broker_users.py). The healthcheck waits for the ready file.
set -eu
ready=/tmp/portal-users-ready
rm -f "$ready"
docker-entrypoint.sh rabbitmq-server &
server=$!
trap 'kill -TERM "$server"; wait "$server"; exit $?' TERM INT
rabbitmqctl --quiet await_startup
for user in auth subscriptions billing notifications gateway operator events-reader; do
    variable="RABBITMQ_$(echo "$user" | tr 'a-z-' 'A-Z_')_PASSWORD"
    password="$(printenv "$variable")"
    rabbitmqctl --quiet add_user "$user" "$password" 2>/dev/null || rabbitmqctl --quiet change_password "$user" "$password"
done
rabbitmqctl --quiet import_definitions /etc/rabbitmq/portal-definitions.json
touch "$ready"
wait "$server"
