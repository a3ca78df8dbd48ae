#!/bin/sh
# nginx's health, for the container's health check (docker-compose.yml) and
# Kubernetes' startup and liveness probes (deploy/kubernetes/base/nginx.yaml):
#
# - nginx answers on its own health port (default.conf.template), which says
#   the same with or without TLS, and whatever web and asgi are doing;
# - the follower of web's replicas (40-follow-web.sh) ran a round in the last
#   10 s. Without it nginx would go on sending requests to the replicas it
#   knew, until a restart left it none; its rounds are 2 s apart and last at
#   most a few seconds, so an older heartbeat means it has stopped.
set -o errexit -o nounset

HEARTBEAT=${FOLLOW_WEB_DIR:-/tmp/follow-web}/heartbeat
MAX_AGE=10

wget -q -T 2 -O /dev/null http://127.0.0.1:8081/healthz

if [ ! -e "$HEARTBEAT" ]; then
    echo "nginx: the follower of web's replicas (40-follow-web.sh) has not run" >&2
    exit 1
fi
age=$(($(date +%s) - $(stat -c %Y "$HEARTBEAT")))
if [ "$age" -ge "$MAX_AGE" ]; then
    echo "nginx: the follower of web's replicas (40-follow-web.sh) last ran $age s ago" >&2
    exit 1
fi
