#!/bin/sh
# The `web` service: Django's WSGI application under Gunicorn, for HTTP.
# run-draining.sh: on SIGTERM, fail readiness and keep serving for a few
# seconds, then let Gunicorn finish what is in flight.
set -o errexit -o nounset

# With METRICS_PORT set, each Gunicorn worker keeps its metrics in files
# here, and the master adds them up (deploy/gunicorn.conf.py). /tmp is a
# tmpfs (memory); emptied at every start, so that counts left by a previous
# run (a restarted container, in Kubernetes a restarted pod's emptyDir) are
# not added to this one's.
export PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus-multiproc
rm -rf "$PROMETHEUS_MULTIPROC_DIR"
mkdir "$PROMETHEUS_MULTIPROC_DIR"

exec deploy/run-draining.sh gunicorn --config deploy/gunicorn.conf.py project.wsgi:application
