"""Sessions kept in PostgreSQL and served from Redis, never from a stale copy.

Django's cached_db engine writes a session to the database, then to the cache,
and reads the cache first. When a write reaches the database but not Redis
(Redis unreachable for a moment), Redis keeps the older copy, and once it
answers again every request is served that older copy.

This engine closes that gap. Every save gives the session a new random
version; Redis stores the version beside the data, and the browser gets it in
a cookie beside the session cookie. A request uses the copy in Redis only when
its version is the one the browser holds, and otherwise reads PostgreSQL (and
refreshes Redis from it). A write that missed Redis leaves a copy whose version
no browser holds any longer, so it is never served. A request with no version
(no cookie yet, or a WebSocket handshake, which cannot set cookies) reads the
database.

Settings: SESSION_ENGINE = "apps.core.sessions", this module's SessionMiddleware
in place of Django's, and SESSION_CACHE_ALIAS naming a cache that ignores
connection errors, so that Redis being down costs speed, never a session.
"""

import logging
import secrets

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.db import SessionStore as DBStore
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.core.cache import caches
from django.db import InterfaceError, OperationalError

logger = logging.getLogger("django.contrib.sessions")


def version_cookie_name() -> str:
    return f"{settings.SESSION_COOKIE_NAME}_version"


class SessionStore(DBStore):
    cache_key_prefix = "sessions:"

    def __init__(self, session_key=None, *, version=None):
        self._cache = caches[settings.SESSION_CACHE_ALIAS]
        self.version = version
        super().__init__(session_key)

    def _cache_key(self) -> str:
        return self.cache_key_prefix + self.session_key

    def load(self):
        cacheable = self.version is not None and self.session_key is not None
        if cacheable:
            try:
                cached = self._cache.get(self._cache_key())
            except Exception:
                # Only caches that raise get here (the stack's ignores errors).
                logger.exception("Error reading session from cache (%s)", self._cache)
                cached = None
            if cached is not None and cached["version"] == self.version:
                return cached["data"]

        stored = self._get_session_from_db()
        if stored is None:
            return {}
        data = self.decode(stored.session_data)
        if cacheable:
            # The database has the newest data there is: cache it under the
            # version this browser holds.
            self._cache_write(data, expiry_age=self.get_expiry_age(expiry=stored.expire_date))
        return data

    def save(self, must_create=False):
        if self.session_key is None:
            # A new session: create() picks a key and comes back here with
            # must_create=True, which does the rest, once.
            return self.create()
        self.version = secrets.token_urlsafe(8)
        try:
            super().save(must_create)
        except UpdateError as error:
            # Django's database backend reports any database error on update as
            # "the session was deleted" (a 400 to the visitor). An unreachable
            # database is not that: let it through, to be answered with a 503.
            if isinstance(error.__context__, OperationalError | InterfaceError):
                raise error.__context__ from None
            raise
        self._cache_write(self._session, expiry_age=self.get_expiry_age())

    def delete(self, session_key=None):
        super().delete(session_key)
        session_key = session_key or self.session_key
        if session_key is not None:
            self._cache.delete(self.cache_key_prefix + session_key)

    def _cache_write(self, data, *, expiry_age):
        try:
            self._cache.set(self._cache_key(), {"version": self.version, "data": data}, expiry_age)
        except Exception:
            # Only caches that raise get here (the stack's ignores errors).
            logger.exception("Error saving session to cache (%s)", self._cache)

    # Django's async session API, through the sync methods above, so that both
    # follow the same rules.
    async def aload(self):
        return await sync_to_async(self.load)()

    async def asave(self, must_create=False):
        await sync_to_async(self.save)(must_create)

    async def adelete(self, session_key=None):
        await sync_to_async(self.delete)(session_key)


class SessionMiddleware(DjangoSessionMiddleware):
    """Django's session middleware, plus the version cookie: read with the
    session cookie, and set or deleted with it, with the same lifetime and flags."""

    def process_request(self, request):
        request.session = self.SessionStore(
            request.COOKIES.get(settings.SESSION_COOKIE_NAME),
            version=request.COOKIES.get(version_cookie_name()),
        )

    def process_response(self, request, response):
        response = super().process_response(request, response)
        session_cookie = response.cookies.get(settings.SESSION_COOKIE_NAME)
        if session_cookie is not None:
            version_cookie = session_cookie.copy()
            # An empty session cookie is a deletion: delete the version too.
            version = request.session.version if session_cookie.value else ""
            version_cookie.set(version_cookie_name(), version, version)
            response.cookies[version_cookie_name()] = version_cookie
        return response
