"""`manage.py migrate`, the project's: it waits for PostgreSQL to answer, and
stops with what to do on a database made before the platform had its own
user model.

Compose starts migrate beside the database rather than after the database's
health check, whose interval is long so that it costs little at rest
(docker-compose.yml). So migrate asks every quarter of a second, for up to
--wait seconds (60): a database still initialising its data directory is
waited for, one that never answers ends in a clear error.

A database made before the user model has Django's auth.User (the auth_user
table) and the admin's migrations applied against it; this project's
migrations start from accounts.User. Django would stop there too, before
applying anything, with InconsistentMigrationHistory ("admin.0001_initial is
applied before its dependency accounts.0001_initial"), which says nothing of
what to do.
"""

import time

import psycopg
from django.core.management.base import CommandError
from django.core.management.commands import migrate
from django.db import connections
from django.db.migrations.exceptions import InconsistentMigrationHistory

MADE_BEFORE_THE_USER_MODEL = """\
This database was made before the project had its own user model: it holds
Django's auth_user table, and the project's users are now accounts.User
(apps/accounts/models.py), from the first migration on. Nothing was changed.

- A stack with nothing to keep (a local one): remove its database and start
  again: `docker compose down --volumes`, then `docker compose up`.
- A database whose users you keep: follow "A database made before the user
  model" in docs/accounts.md, which moves auth_user's rows into
  accounts_user.
"""

RETRY_SECONDS = 0.25


class Command(migrate.Command):
    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--wait",
            type=float,
            default=60.0,
            help="Seconds to wait for the database to answer (default: 60).",
        )

    def handle(self, *args, **options):
        self.database_wait(options["database"], options["wait"])
        try:
            return super().handle(*args, **options)
        except InconsistentMigrationHistory as error:
            connection = connections[options["database"]]
            if "auth_user" in connection.introspection.table_names():
                raise CommandError(MADE_BEFORE_THE_USER_MODEL) from error
            raise

    def database_wait(self, alias: str, seconds: float) -> None:
        connection = connections[alias]
        deadline = time.monotonic() + seconds
        said = False
        while True:
            try:
                # A connection of its own, not Django's: with psycopg's pool,
                # the pool would retry a failed connect after 1, 2, 4... s.
                params = {"connect_timeout": 5, **connection.get_connection_params()}
                psycopg.connect(**params).close()
                return
            except psycopg.OperationalError as error:
                if time.monotonic() >= deadline:
                    raise CommandError(
                        f"the database ({alias}) did not answer within {seconds:g} s: {error}"
                    ) from error
                if not said:
                    self.stderr.write(f"Waiting for the database ({alias}) to answer…")
                    said = True
                time.sleep(RETRY_SECONDS)
