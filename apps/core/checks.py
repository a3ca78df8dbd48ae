"""Readiness checks: each one uses a dependency the way the site does, and raises
when it cannot. A check that hangs is as bad as one that fails, so each is bounded
by a timeout (connect_timeout for PostgreSQL, socket timeouts for Redis)."""

import asyncio
import secrets

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import caches
from django.db import connection

CHANNEL_LAYER_TIMEOUT = 2  # seconds


def database_check() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def cache_check(*, alias: str) -> None:
    """Write a token and read it back: a cache that ignores errors answers None
    instead of raising, and that fails here too."""
    cache = caches[alias]
    key, token = f"readyz:{secrets.token_hex(8)}", secrets.token_hex(8)
    cache.set(key, token, timeout=10)
    if cache.get(key) != token:
        raise ConnectionError(f"cache {alias!r} did not return what was written")
    cache.delete(key)


async def _channel_layer_round_trip() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "readyz.ping"})
    await layer.receive(channel)


def channel_layer_check() -> None:
    async def bounded():
        await asyncio.wait_for(_channel_layer_round_trip(), CHANNEL_LAYER_TIMEOUT)

    async_to_sync(bounded)()


READINESS_CHECKS = {
    "database": database_check,
    "cache": lambda: cache_check(alias="default"),
    "channel_layer": channel_layer_check,
}
