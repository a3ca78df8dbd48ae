#!/bin/sh
# Makes the local overlay's secrets, once, in secrets/ beside this script
# (git ignores it), with the generator Compose's secrets service runs
# (deploy/generate_secrets.py): the same files, which the Secrets are made of,
# and which the pods read through the same variables as Compose's containers.
#
#   secrets/django_secret_key, postgres_password, redis_password
#                                 the Secret django-secrets: Django's, and the
#                                 in-cluster PostgreSQL's and Redis's own
#   secrets/postgres-superuser/password
#                                 the Secret postgres-superuser: PostgreSQL's
#                                 superuser, which only the db pod mounts
#   secrets/redis/redis_admin_password
#                                 the Secret redis-admin: Redis's admin user,
#                                 which only the redis pod mounts
#
# Files already there are kept, so running it again changes nothing, and the
# Secrets keep their values across applies. It needs python3.
#
#   deploy/kubernetes/overlays/local/make-secrets.sh [DIR]    (DIR: another overlay copy)
set -o errexit -o nounset

here=$(dirname "$0")
dir="${1:-$here}/secrets"
# Readable by you alone: the generator gives the password files modes that
# the Compose containers' users need (0644), which this folder overrides.
mkdir -p "$dir/postgres-superuser" "$dir/redis"
chmod 700 "$dir" "$dir/postgres-superuser" "$dir/redis"
python3 "$here/../../../generate_secrets.py" "$dir" "$dir/postgres-superuser" --redis "$dir/redis"
echo "secrets in $dir"
