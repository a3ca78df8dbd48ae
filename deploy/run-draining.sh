#!/bin/sh
# Run a server (the arguments) so that stopping it drains it first.
#
#   deploy/run-draining.sh gunicorn --config deploy/gunicorn.conf.py project.wsgi:application
#
# On SIGTERM (docker stop, a Kubernetes pod ending) the server is not told at
# once. First the drain marker appears: /readyz answers 503 from then on, so load
# balancers stop sending new work, and new WebSockets are refused. Then
# $DRAIN_HOOK runs (asgi uses it to tell open WebSockets to reconnect
# elsewhere), and for DRAIN_SECONDS the server goes on serving. Only then does
# it get the SIGTERM, and shuts down gracefully: Gunicorn finishes the
# requests in flight (graceful_timeout). Compose's stop_grace_period covers
# the sum (tests/test_shutdown_timing.py; Kubernetes' grace period,
# tests/kubernetes/test_invariants.py).
#
# Gunicorn's other signals pass straight through to the server as they
# arrive: HUP (reload), TTIN and TTOU (one worker more or fewer), USR1 (reopen
# the logs), USR2 (upgrade the binary in place). `docker kill --signal HUP web`
# reaches Gunicorn as it would without this script.
#
# This script stays PID 1 rather than exec'ing the server, because it must
# catch the signal itself; it passes the server's exit status on. POSIX sh
# (dash in the image): plain traps only.
set -o errexit -o nounset

# The marker's path is apps/core/draining.py's DRAIN_MARKER, where /readyz
# and the WebSocket consumers look for it: asked of Python (in the image, run
# from /app), never written twice. A failure here stops the start, loudly.
DRAIN_MARKER=$(python -c 'from apps.core.draining import DRAIN_MARKER; print(DRAIN_MARKER)')
rm -f "$DRAIN_MARKER"

"$@" &
server=$!

# shellcheck disable=SC2329  # called by the trap below
drain() {
    touch "$DRAIN_MARKER"
    if [ -n "${DRAIN_HOOK:-}" ]; then
        sh -c "$DRAIN_HOOK" || echo "run-draining: the drain hook failed; going on" >&2
    fi
    sleep "${DRAIN_SECONDS:-5}"
    kill -TERM "$server" 2>/dev/null || true
}
trap drain TERM INT

# shellcheck disable=SC2329  # called by the traps below
forward() {
    kill "-$1" "$server" 2>/dev/null || true
}
for signal in HUP TTIN TTOU USR1 USR2; do
    # shellcheck disable=SC2064  # $signal is meant to be expanded now
    trap "forward $signal" "$signal"
done

# `wait` returns early when a trapped signal arrives; wait again until the
# server has really exited, and pass its status on.
status=0
while kill -0 "$server" 2>/dev/null; do
    wait "$server" && status=0 || status=$?
done
exit "$status"
