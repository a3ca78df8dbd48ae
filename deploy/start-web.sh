#!/bin/sh
# The `web` service: Django's WSGI application under Gunicorn, for HTTP.
# run-draining.sh: on SIGTERM, fail readiness and keep serving for a few
# seconds, then let Gunicorn finish what is in flight.
set -o errexit -o nounset

exec deploy/run-draining.sh gunicorn --config deploy/gunicorn.conf.py project.wsgi:application
