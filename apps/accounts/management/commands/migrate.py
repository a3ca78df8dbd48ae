"""`manage.py migrate`, stopping with what to do on a database made before the
platform had its own user model.

Such a database has Django's auth.User (the auth_user table) and the admin's
migrations applied against it; this project's migrations start from
accounts.User. Django would stop there too, before applying anything, with
InconsistentMigrationHistory ("admin.0001_initial is applied before its
dependency accounts.0001_initial"), which says nothing of what to do.
"""

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


class Command(migrate.Command):
    def handle(self, *args, **options):
        try:
            return super().handle(*args, **options)
        except InconsistentMigrationHistory as error:
            connection = connections[options["database"]]
            if "auth_user" in connection.introspection.table_names():
                raise CommandError(MADE_BEFORE_THE_USER_MODEL) from error
            raise
