#!/bin/sh
# The `asgi` service: Django Channels' ASGI application under Daphne, for WebSockets.
set -o errexit -o nounset

# On SIGTERM, run-draining.sh fails readiness and refuses new WebSockets, then
# this hook closes the open ones with code 4012 (service restart) so their
# clients reconnect, to another replica if there is one; two seconds later
# Daphne stops.
export DRAIN_HOOK="python manage.py websockets_close"
export DRAIN_SECONDS=2

# --port: where nginx sends WebSockets (nginx/snippets/site.conf). Daphne's
#   port is defined here; tests/test_ports.py holds every file that names it
#   to this one.
# --proxy-headers: take the client address from X-Forwarded-For. Only nginx
#   reaches this port, and nginx overwrites that header with the address it saw.
# --ping-interval/--ping-timeout: ping idle sockets every 20 s and drop dead
#   ones after 30 s more; nginx's proxy_read_timeout for /ws/ (60 s) is longer,
#   so it never cuts a healthy idle socket.
# --websocket-max-message-size: refuse messages over 64 KiB rather than buffer
#   them; the consumer refuses anything over 16 KiB anyway.
# --no-server-name: no server name or version in responses.
# --verbosity 0: no access log of Daphne's own, which has no request id and
#   is plain text whatever LOG_FORMAT says; project/asgi.py writes it, in the
#   project's schema (apps/core/request_id.py). Django's LOGGING sets the
#   level of everything else.
exec deploy/run-draining.sh daphne \
  --bind 0.0.0.0 --port 8001 \
  --proxy-headers \
  --ping-interval 20 --ping-timeout 30 \
  --websocket-max-message-size 65536 \
  --no-server-name \
  --verbosity 0 \
  project.asgi:application
