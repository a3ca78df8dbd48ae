#!/bin/sh
# Replace a service's containers without dropping a request: the documented
# zero-downtime restart (and deploy: build the new image first).
#
#   docker compose build web && deploy/rolling-restart.sh web
#   deploy/rolling-restart.sh asgi
#   deploy/rolling-restart.sh worker
#
# New containers start beside the old ones (from the newest image) and must be
# healthy before anything else happens. Within about 5 s nginx sends them work
# too (it reloads when two of its 2 s rounds find new web replicas ready,
# nginx/40-follow-web.sh, and looks asgi up at most 5 s old). Then the old
# containers are stopped: each drains (deploy/run-draining.sh) and finishes
# what it has in flight, while nginx moves on to the new containers. Open
# WebSockets on an old asgi container are told to reconnect (code 4012), and
# do, to a new one.
set -o errexit -o nounset

service=${1:?usage: deploy/rolling-restart.sh SERVICE}
old=$(docker compose ps --quiet "$service")
count=$(printf '%s\n' "$old" | grep -c .)
[ "$count" -gt 0 ] || { echo "rolling-restart: no running $service containers" >&2; exit 1; }

echo "rolling-restart: starting $count new $service container(s) beside the old"
docker compose up --detach --no-deps --no-recreate --wait --scale "$service=$((count * 2))" "$service"

echo "rolling-restart: waiting for nginx to learn the new addresses"
sleep 6

echo "rolling-restart: stopping the old container(s), which drain first"
for container in $old; do
    # No --time: each service's own stop_grace_period (docker-compose.yml),
    # which Compose gives the container: web's and asgi's drain, the worker's
    # longest task.
    docker stop "$container" >/dev/null
    docker rm "$container" >/dev/null
done
echo "rolling-restart: $service replaced"
