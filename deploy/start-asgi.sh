#!/bin/sh
# The `asgi` service: Django Channels' ASGI application under Daphne, for WebSockets.
# exec, so that Daphne receives Docker's SIGTERM.
set -o errexit -o nounset

# --proxy-headers: take the client address from X-Forwarded-For. Only nginx
#   reaches this port, and nginx overwrites that header with the address it saw.
# --ping-interval/--ping-timeout: ping idle sockets every 20 s and drop dead
#   ones after 30 s more; nginx's proxy_read_timeout for /ws/ (60 s) is longer,
#   so it never cuts a healthy idle socket.
# --websocket-max-message-size: refuse messages over 64 KiB rather than buffer
#   them; the consumer refuses anything over 16 KiB anyway.
# --no-server-name: no server name or version in responses.
exec daphne \
  --bind 0.0.0.0 --port 8001 \
  --proxy-headers \
  --ping-interval 20 --ping-timeout 30 \
  --websocket-max-message-size 65536 \
  --no-server-name \
  project.asgi:application
