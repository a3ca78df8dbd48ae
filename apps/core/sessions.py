"""Sessions: PostgreSQL keeps every one; requests read a copy from Redis.

PostgreSQL's django_session is the session: a request that saves writes the
row, and a session whose row is gone is gone. Redis holds a copy of each row
that requests read (its signed data, as the row holds it, under a hash of its
key: hashed()), so a request whose copy is there asks PostgreSQL nothing for
its session. The copies are in a
Redis database of their own (CACHES["sessions"]): flushing the cache never
touches them, and losing them (a restart, an eviction, a flush) costs each
session one read from PostgreSQL, which makes a new copy. Nobody is logged out.

Revocation: a row deleted by any path is never served from a copy again.
- Deleting rows of django_session, by whatever means (logging out,
  `clearsessions`, `endsessions`, an operator's DELETE or TRUNCATE by hand),
  fires a trigger (migration core.0002) that NOTIFYs their keys, in one
  notification per statement, on NOTIFY_CHANNEL. The evictor (CopyEvictor,
  a thread of every worker process) LISTENs and deletes those copies: on
  every web and asgi process at once, since they all read the same Redis,
  within milliseconds. The process that logs a session out deletes its copy
  itself too.
- The evictor vouches for the copies: every second, while it listens and has
  dropped every copy it was told to, it renews a key (VOUCHED) that lapses
  after VOUCH_SECONDS. Requests read the copy and that key in one round trip,
  and trust the copy only while it is there. So when the path is down (no
  worker running, the evictor's connection to PostgreSQL lost, Redis
  unreachable from it), copies stop being trusted within VOUCH_SECONDS (3 s)
  and every request reads PostgreSQL: a revoked session is never served for
  longer than that. An evictor that starts listening again drops every copy
  before it vouches again (it may have missed a revocation meanwhile).
- Why not a version each read checks in PostgreSQL: that check is the very
  query the copy saves. Why NOTIFY, which Worker does not use for tasks (a
  transaction that NOTIFYs takes a cluster-wide lock through its commit):
  here only transactions that delete sessions notify, which are rare next to
  the reads they spare. The evictor's connection must reach PostgreSQL
  directly: LISTEN does not work through a pooler in transaction mode.

No write is lost or brought back:
- A save writes the row first (an UPDATE, never an INSERT, so a row deleted
  meanwhile stays deleted), then deletes the copy, after the commit. It does
  not write a new copy: two saves racing could leave the older one there.
- A copy is made only by a request that took the session's lease (SET NX)
  before reading the row, and only if the lease is still its own when it
  writes the copy (a transaction that WATCHes the lease). Deleting the copy deletes the lease, so a
  read that raced a save or a revocation never leaves its stale row behind.
- A copy that a save could not delete (Redis unreachable from that process)
  is handed to the evictor through PostgreSQL (the same notification).

Redis away: a request that finds Redis unreachable reads PostgreSQL and, for
REDIS_PAUSE_SECONDS, leaves Redis alone (a network cut would cost each
request a connect timeout). Logins and logouts go to PostgreSQL as ever.

Without CACHES["sessions"] (no REDIS_URL: a plain virtualenv) or with
SESSION_COPY_SECONDS = 0, there are no copies: every read is PostgreSQL's.

What Django's database engine does not do, and this one adds: a session
update that fails because PostgreSQL is unreachable is an outage (a 503, "try
again", from apps.core.views.server_error), not "the session was deleted" (a
400). And what it does that this one spares, on every session it writes: a
transaction around the one INSERT or UPDATE (BEGIN and COMMIT, two round
trips), unless the caller has one open; and a lookup of a new session's key
(a SELECT per new session; 32 random characters of 36, 165 bits, never meet
an existing key by chance, and if one did, the INSERT would fail on the
primary key and another key be drawn, as Django's own race handling does).

Settings: SESSION_ENGINE = "apps.core.sessions", with Django's own
SessionMiddleware; SESSION_COPY_SECONDS.
"""

import contextlib
import hashlib
import logging
import threading
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError, UpdateError
from django.contrib.sessions.backends.db import SessionStore as DBStore
from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    connections,
    router,
    transaction,
)
from django.utils import timezone
from django.utils.crypto import get_random_string
from django_redis import get_redis_connection
from redis.exceptions import RedisError, WatchError

logger = logging.getLogger(__name__)

# The notification the trigger (migration core.0002) and save() send: a
# space-separated list of session keys whose copies to drop, or "*" for all.
NOTIFY_CHANNEL = "session_copies_drop"
# The key the evictor renews while it keeps the copies true, and how long
# each renewal lasts: the longest a revoked session can be served when the
# path that drops copies is down.
VOUCHED = "vouched"
VOUCH_SECONDS = 3
VOUCH_EVERY_SECONDS = 1
# How long a request's read of the row may take before another request may
# make the copy instead.
LEASE_MILLISECONDS = 5000
# After Redis failed a request: go straight to PostgreSQL for this long.
REDIS_PAUSE_SECONDS = 5


def hashed(session_key: str) -> str:
    """A session key is as good as the password it stands for: Redis, and
    whatever records its commands (MONITOR, Sentry's breadcrumbs), see its
    hash alone."""
    return hashlib.blake2b(session_key.encode(), digest_size=16).hexdigest()


def copy_key(session_key: str) -> str:
    return f"copy:{hashed(session_key)}"


def lease_key(session_key: str) -> str:
    return f"lease:{hashed(session_key)}"


class Copies:
    """The Redis side: None when there are no copies, and a pause after a failure."""

    paused_until = 0.0

    @classmethod
    def client(cls):
        if not settings.SESSION_COPY_SECONDS or "sessions" not in settings.CACHES:
            return None
        if time.monotonic() < cls.paused_until:
            return None
        return get_redis_connection("sessions")

    @classmethod
    def failed(cls, error: RedisError) -> None:
        if time.monotonic() >= cls.paused_until:
            logger.warning(
                "sessions: Redis unreachable, reading PostgreSQL for %s s: %s",
                REDIS_PAUSE_SECONDS,
                error,
            )
        cls.paused_until = time.monotonic() + REDIS_PAUSE_SECONDS

    @staticmethod
    def fill(client, session_key: str, token: str, data: str, seconds: int) -> None:
        """Write the copy only if the lease is still the caller's: nothing
        deleted it since the caller took it, before reading the row. A Redis
        transaction that WATCHes the lease, not a Lua script: the
        application's Redis user need not run scripts."""
        lease = lease_key(session_key)
        with client.pipeline() as pipe:
            try:
                pipe.watch(lease)
                if pipe.get(lease) != token.encode():
                    return
                pipe.multi()
                pipe.set(copy_key(session_key), data, ex=seconds)
                pipe.delete(lease)
                pipe.execute()
            except WatchError:  # deleted or taken meanwhile: no copy
                return

    @classmethod
    def drop(cls, session_key: str) -> None:
        """Delete a session's copy (and lease); failing that, ask the evictor."""
        client = cls.client()
        try:
            if client is None:
                raise RedisError("paused after a failure")
            client.delete(copy_key(session_key), lease_key(session_key))
        except RedisError as error:
            if client is not None:
                cls.failed(error)
            if settings.SESSION_COPY_SECONDS and "sessions" in settings.CACHES:
                with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
                    cursor.execute("SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, session_key])


class SessionStore(DBStore):
    def load(self):
        client = Copies.client()
        key = self.session_key
        # _validate_session_key and _get_session_from_db are Django's, which
        # django-stubs leaves out.
        valid = key is not None and self._validate_session_key(key)  # type: ignore[attr-defined]
        if client is None or key is None or not valid:
            return super().load()
        try:
            data, vouched = client.mget(copy_key(key), VOUCHED)
            if data is not None and vouched is not None:
                return self.decode(data.decode())
            token = get_random_string(16)
            leased = client.set(lease_key(key), token, nx=True, px=LEASE_MILLISECONDS)
        except RedisError as error:
            Copies.failed(error)
            return super().load()
        session = self._get_session_from_db()  # type: ignore[attr-defined]
        if session is None:
            return {}
        if leased:
            seconds = min(
                settings.SESSION_COPY_SECONDS,
                int((session.expire_date - timezone.now()).total_seconds()),
            )
            if seconds > 0:
                try:
                    Copies.fill(client, key, token, session.session_data, seconds)
                except RedisError as error:
                    Copies.failed(error)
        return self.decode(session.session_data)

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
        if not must_create:  # a new session has no copy yet
            key = session.session_key
            transaction.on_commit(lambda: Copies.drop(key), using=using)

    def delete(self, session_key=None):
        key = session_key or self.session_key
        super().delete(session_key)
        if key is not None:
            transaction.on_commit(lambda: Copies.drop(key))

    # From async code, the same rules, through the methods above.
    async def aload(self):
        return await sync_to_async(self.load)()

    async def asave(self, must_create=False):
        await sync_to_async(self.save)(must_create)

    async def adelete(self, session_key=None):
        await sync_to_async(self.delete)(session_key)


def copies_drop_all() -> int:
    """Delete every copy and lease (and the evictor's vouching with them).
    Raises RedisError when Redis is unreachable."""
    client = get_redis_connection("sessions")
    count = client.dbsize()
    client.flushdb()
    return count


class CopyEvictor:
    """Keeps the copies true: LISTENs on NOTIFY_CHANNEL and deletes the copies
    it is told to, and vouches for them (VOUCHED) while it can. A thread of
    each worker process (apps/core/tasks/worker.py); more than one is fine."""

    def __init__(self, stopping: threading.Event):
        self.stopping = stopping
        # Copies to drop that Redis did not take yet: keys, or "*" for all.
        self.pending: set[str] = set()
        self.redis_failing = False  # to log an outage once, not every turn

    @staticmethod
    def enabled() -> bool:
        return bool(settings.SESSION_COPY_SECONDS) and "sessions" in settings.CACHES

    def run(self) -> None:
        while not self.stopping.is_set():
            listener = connections.create_connection("default")
            try:
                with listener.cursor() as cursor:
                    cursor.execute(f"LISTEN {NOTIFY_CHANNEL}")
                logger.info("sessions: listening for revocations (%s)", NOTIFY_CHANNEL)
                # Whatever was revoked while nobody listened: drop every copy.
                self.pending = {"*"}
                self.listen(listener.connection)
            except DatabaseError as error:
                logger.warning(
                    "sessions: listening for revocations failed; again in 1 s: %s", error
                )
                self.stopping.wait(1)
            finally:
                with contextlib.suppress(DatabaseError):
                    listener.close()

    def listen(self, raw) -> None:
        """Until stopped or the connection breaks (psycopg raises, as a DatabaseError)."""
        vouched_at = 0.0
        while not self.stopping.is_set():
            # psycopg's OperationalError is not Django's: turn it into one.
            with listener_errors():
                for notification in raw.notifies(timeout=VOUCH_EVERY_SECONDS / 2):
                    self.pending.update(notification.payload.split())
            if self.pending:
                self.drop_pending()
            if not self.pending and time.monotonic() - vouched_at >= VOUCH_EVERY_SECONDS:
                # A round trip first: a connection that died without a word
                # (a half-open TCP connection) delivers no notification, and
                # raises nothing, until it is used.
                with listener_errors():
                    raw.execute("SELECT 1")
                with contextlib.suppress(RedisError):
                    get_redis_connection("sessions").set(VOUCHED, "1", ex=VOUCH_SECONDS)
                    vouched_at = time.monotonic()

    def drop_pending(self) -> None:
        try:
            if "*" in self.pending:
                count = copies_drop_all()
                logger.info("sessions: dropped every copy (%s keys)", count)
            else:
                client = get_redis_connection("sessions")
                keys = [k for key in self.pending for k in (copy_key(key), lease_key(key))]
                client.delete(*keys)
            self.pending.clear()
        except RedisError as error:
            # Not vouching meanwhile: requests read PostgreSQL within VOUCH_SECONDS.
            if not self.redis_failing:
                logger.warning(
                    "sessions: Redis unreachable; copies unvouched until it is back: %s", error
                )
            self.redis_failing = True
            self.stopping.wait(VOUCH_EVERY_SECONDS / 2)
            return
        if self.redis_failing:
            logger.info("sessions: Redis reachable again; copies dropped as told")
            self.redis_failing = False


@contextlib.contextmanager
def listener_errors():
    import psycopg

    try:
        yield
    except psycopg.Error as error:
        raise OperationalError(str(error)) from error
