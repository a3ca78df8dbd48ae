#!/bin/sh
# A dump of the stack's database, on this machine, outside the containers:
#
#   deploy/backup.sh [DIR]      (make backup; DIR defaults to backups/)
#
# writes DIR/app-<UTC date and time>.dump, pg_dump's custom format (compressed;
# deploy/restore.sh puts it back). pg_dump reads everything in one snapshot:
# the dump is consistent while the stack runs and writes, and it blocks no
# one. It runs inside the db container, as the superuser over the container's
# own socket, so no password leaves the secrets volumes.
#
# The Compose project is the current folder's, or COMPOSE_PROJECT_NAME's.
set -o errexit -o nounset

dir=${1:-backups}
mkdir -p "$dir"
# The dump holds everything in the database, password hashes and sessions
# included: readable by you alone.
umask 077
file="$dir/app-$(date -u +%Y-%m-%dT%H%M%SZ).dump"
partial="$file.partial"
# A dump cut short (an error, Ctrl-C) is removed, never left to look whole.
trap 'rm -f "$partial"' EXIT

echo "backup: dumping database app (pg_dump, in the db service) to $file"
started=$(date +%s)
docker compose exec -T db pg_dump --username postgres --format custom --dbname app >"$partial"
mv "$partial" "$file"
echo "backup: done in $(($(date +%s) - started)) s, $(wc -c <"$file") bytes: $file"
