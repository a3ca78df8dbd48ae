#!/bin/sh
# The role the application connects as, and its database. The postgres
# image runs this once, on an empty data directory, as its superuser
# (`postgres`, over the container's own socket), before the server first
# takes connections.
#
# The app owns its database, so it owns the `public` schema too (PostgreSQL
# 15+: pg_database_owner), and its migrations create and alter its tables;
# it is no superuser, and can make no database and no role. Someone who
# takes over a web process can reach the app's own data, and nothing else
# on the server: not other databases, not files (COPY ... PROGRAM), not roles.
#
# APP_DB_PASSWORD_FILE holds the app's password (the db service's
# environment says where): the file the app reads as DATABASE_PASSWORD_FILE.
# The role and database are named `app`, as in DATABASE_URL. The Kubernetes
# local overlay has a copy of this file
# (deploy/kubernetes/overlays/local/db-init/), which a test keeps the same.
set -o errexit -o nounset

# psql quotes the password itself (:'password'), whatever it holds.
psql --no-psqlrc --set ON_ERROR_STOP=1 --dbname postgres \
    --set password="$(cat "${APP_DB_PASSWORD_FILE:?the file with the password of the app role}")" <<'SQL'
CREATE ROLE app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'password';
CREATE DATABASE app OWNER app;
SQL
echo "create-app-role: made role app (no superuser) and its database app"
