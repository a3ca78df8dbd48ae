#!/bin/sh
# Makes the local overlay's secrets, once: a Django secret key, PostgreSQL's
# superuser password and the app role's, and the URLs that carry the app's,
# in secrets/ beside this script (git ignores it). Files already there are
# kept, so running it again changes nothing, and the Secrets keep their
# values across applies.
#
#   deploy/kubernetes/overlays/local/make-secrets.sh [DIR]    (DIR: another overlay copy)
set -o errexit -o nounset

dir="${1:-$(dirname "$0")}/secrets"
mkdir -p "$dir"
chmod 700 "$dir"
umask 077

# URL-safe random text: no character to escape in a URL.
random() {
    python3 -c 'import secrets, sys; sys.stdout.write(secrets.token_urlsafe(int(sys.argv[1])))' "$1"
}

[ -s "$dir/django_secret_key" ] || random 50 > "$dir/django_secret_key"
[ -s "$dir/superuser_password" ] || random 32 > "$dir/superuser_password"
[ -s "$dir/postgres_password" ] || random 32 > "$dir/postgres_password"
# No trailing newline in any file: project/env.py reads them whole.
printf 'postgres://app:%s@db:5432/app' "$(cat "$dir/postgres_password")" > "$dir/database_url"
printf 'redis://redis:6379' > "$dir/redis_url"
echo "secrets in $dir"
