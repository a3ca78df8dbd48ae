"""Sessions kept in PostgreSQL alone: what the database says is what is served.

Each request that reads its session reads the row, by primary key, from
PostgreSQL; there is no copy anywhere else. So a session removed from the
database, by any path (logging out, `clearsessions`, an operator deleting rows
of django_session to log everyone out, logging out everywhere), is gone on the
very next request, and Redis, up or down, changes nothing for sessions.

This engine once served a copy held in Redis, checked by a version cookie.
That copy answered without asking PostgreSQL, so a deleted session stayed
valid until the copy expired (and a logout while Redis was unreachable left the
copy for good). Checking the row on each request to close that gap costs the
very query that reading the row costs, so the copy would only add a Redis
round trip; on first visits it cost about a tenth (docs/performance.md).

A request that does not use its session costs no query, and a visitor whose
session holds nothing gets no row: Django saves a session only when something
is stored in it. So a first visit to a page that needs no session (the admin's
login form, /healthz, /readyz) writes nothing.

What Django's database engine does not do, and this one adds: a session update
that fails because PostgreSQL is unreachable is an outage (a 503, "try again",
from apps.core.views.server_error), not "the session was deleted" (a 400).

And what it does that this one spares, on every session it writes: a
transaction around the one INSERT or UPDATE (BEGIN and COMMIT, two round
trips), unless the caller has one open; and a new session's key is not first
looked up (a SELECT per new session; 32 random characters of 36, 165 bits,
never meet an existing key by chance, and if one did, the INSERT would fail
on the primary key and another key be drawn, as Django's own race handling
does).

Settings: SESSION_ENGINE = "apps.core.sessions", with Django's own
SessionMiddleware.
"""

import contextlib

from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError, UpdateError
from django.contrib.sessions.backends.db import SessionStore as DBStore
from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    router,
    transaction,
)
from django.utils.crypto import get_random_string


class SessionStore(DBStore):
    def _get_new_session_key(self):
        # No query: see the module's docstring. create() saves with
        # must_create, so a key already taken is a CreateError, and a new draw.
        return get_random_string(32, VALID_KEY_CHARS)

    def save(self, must_create=False):
        if self.session_key is None:
            return self.create()
        # As Django's save() does; django-stubs leaves out this private method.
        data = self._get_session(no_load=must_create)  # type: ignore[attr-defined]
        session = self.create_model_instance(data)
        using = router.db_for_write(self.model, instance=session)
        # One INSERT or UPDATE, atomic by itself: Django's engine wraps it in
        # a transaction, two more round trips (BEGIN, COMMIT) for nothing.
        # Inside a transaction of the caller's (ATOMIC_REQUESTS), a savepoint
        # still keeps a failed INSERT from breaking it, as in Django's.
        nested = transaction.get_connection(using).in_atomic_block
        try:
            with transaction.atomic(using=using) if nested else contextlib.nullcontext():
                session.save(force_insert=must_create, force_update=not must_create, using=using)
        except IntegrityError as error:
            if must_create:  # the key is taken: create() draws another
                raise CreateError from error
            raise
        except (OperationalError, InterfaceError):
            # Django's engine reports any database error on update as "the
            # session was deleted" (a 400 to the visitor). An unreachable
            # database is not that: let it through, to be answered with a 503.
            raise
        except DatabaseError as error:
            # A row that is really gone: the session is not written back (an
            # update is an UPDATE, never an INSERT).
            if not must_create:
                raise UpdateError from error
            raise

    # Saving from async code goes through save() above, so that both follow the
    # same rules.
    async def asave(self, must_create=False):
        await sync_to_async(self.save)(must_create)
