#!/bin/sh
# The `housekeeping` service: Django's periodic chores, for Compose, which has
# no scheduler. (Kubernetes runs the same as a CronJob:
# deploy/kubernetes/base/clearsessions.yaml.)
#
# clearsessions deletes the session rows whose expiry has passed; nothing else
# does, so without it django_session only grows. Once at start, then daily. A
# run that fails (PostgreSQL down, say) is logged and tried again in an hour,
# rather than exiting into a restart loop.
set -o nounset

DAY=86400
HOUR=3600

# Stop at once on `docker compose stop`: sleep runs in the background so that
# the trapped signal interrupts `wait`.
trap 'exit 0' TERM INT

while :; do
    if python manage.py clearsessions; then
        echo "housekeeping: expired sessions cleared; next run in a day"
        pause=$DAY
    else
        echo "housekeeping: clearsessions failed; trying again in an hour" >&2
        pause=$HOUR
    fi
    sleep "$pause" &
    wait $!
done
