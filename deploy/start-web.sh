#!/bin/sh
# The `web` service: Django's WSGI application under Gunicorn, for HTTP.
# exec, so that Gunicorn is PID 1's only child and receives Docker's SIGTERM.
set -o errexit -o nounset

exec gunicorn --config deploy/gunicorn.conf.py project.wsgi:application
