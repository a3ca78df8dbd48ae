#!/bin/sh
# Put a dump made by deploy/backup.sh back into the stack's database:
#
#   deploy/restore.sh FILE      (make restore FILE=backups/app-....dump)
#
# Every table, sequence and index in the dump is dropped (if there) and
# recreated with the dump's rows, in ONE transaction: if anything fails,
# nothing changed. Safe on a running stack: requests wait on the tables'
# locks for the moment the transaction takes to commit, then see the
# restored data. Rows written since the dump are lost: that is what a
# restore is. Then the migrations run, for a dump older than the code.
#
# It also restores into an empty database (a new `pgdata` volume), and
# moves a dump into the layout deploy/postgres/create-app-role.sh makes:
# the restored objects belong to `app`, as in the dump.
#
# The Compose project is the current folder's, or COMPOSE_PROJECT_NAME's.
set -o errexit -o nounset

file=${1:?usage: deploy/restore.sh FILE (a dump made by deploy/backup.sh)}
[ -s "$file" ] || { echo "restore: $file is missing or empty" >&2; exit 2; }

echo "restore: replacing database app with $file, in one transaction"
started=$(date +%s)
docker compose exec -T db pg_restore --username postgres --dbname app \
    --clean --if-exists --single-transaction <"$file"
echo "restore: restored in $(($(date +%s) - started)) s; applying any newer migrations"
docker compose run --rm --no-deps --no-TTY migrate
# Redis still holds copies of the sessions of before (apps/core/sessions.py),
# and dropping a table tells no trigger: drop them, so that each session is
# read from the restored table. (A stack whose Redis is down has none to
# serve: the workers stop vouching for them.)
echo "restore: dropping the sessions' copies in Redis"
docker compose run --rm --no-deps --no-TTY migrate python manage.py shell --command \
    "from apps.core.sessions import copies_drop_all; copies_drop_all()" ||
    echo "restore: could not reach Redis; its session copies are not trusted until the worker drops them" >&2
echo "restore: done"
