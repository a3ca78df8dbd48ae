#!/bin/bash
# The health check of web, asgi and the worker (docker-compose.yml; the
# worker's Kubernetes probes too):
#
#   deploy/healthcheck.sh 8000            GET /healthz on this container's port
#   deploy/healthcheck.sh worker [FILE]   the worker's own account of itself
#
# Exits 0 when healthy: /healthz answered 200; or, for the worker, the time
# now is within the "healthy until" it last wrote (apps/core/tasks/worker.py,
# HEALTH_FILE), which it works out from its own limits: PostgreSQL answered
# its last heartbeat, its loop turned recently or the task in hand is within
# its time limit, and the heartbeat itself is fresh.
#
# Bash and its builtins alone (/dev/tcp, printf's clock, read): Docker runs
# this every few seconds in every replica for as long as the stack runs, and
# a Python interpreter's start cost 25 ms of CPU a check more than bash's
# (docs/performance.md, the stack at rest).
set -o nounset

if [[ ${1:?usage: healthcheck.sh PORT | worker [FILE]} == worker ]]; then
    read -r healthy_until _ < "${2:-/tmp/worker-health}" || exit 1
    # A number, or nothing: bash would evaluate anything else as an expression.
    [[ $healthy_until =~ ^[0-9]+$ ]] || exit 1
    printf -v now '%(%s)T' -1
    ((now <= healthy_until))
    exit
fi

# A refused or silent port is unhealthy too: bash reports the first, the
# read's timeout (within Docker's own) the second.
exec 3<> "/dev/tcp/127.0.0.1/$1" || exit 1
# HTTP/1.0: the server closes the connection after its answer.
printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
read -r -t 3 _ status _ <&3 || exit 1 # "HTTP/1.1 200 OK"
[[ $status == 200 ]]
