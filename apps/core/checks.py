"""Readiness checks: each one uses a dependency the way the site does, and raises
when it cannot. A check that hangs is as bad as one that fails, so each is bounded
by a timeout (connect_timeout for PostgreSQL, socket timeouts for Redis, and
CHANNEL_LAYER_TIMEOUT for the channel layer's round trip)."""

import asyncio
import concurrent.futures
import logging
import os
import secrets
import threading
from collections.abc import Callable

from channels.layers import BaseChannelLayer, get_channel_layer
from django.core.cache import caches
from django.db import connection

logger = logging.getLogger(__name__)

CHANNEL_LAYER_TIMEOUT = 2  # seconds
# While no answer has come, the ping is sent again this often: the layer
# confirms the channel's subscription before new_channel() returns
# (apps/core/channel_layer.py), but a PUBLISH made while its pub/sub
# connection reconnects (Redis restarted) is lost all the same, not late.
CHANNEL_LAYER_RESEND_SECONDS = 0.25


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


class ChannelLayerCheck:
    """A message sent through the channel layer to a channel of this process,
    and received back, within CHANNEL_LAYER_TIMEOUT.

    channels-redis keeps a layer (its connections and subscriptions) per event
    loop. Run through async_to_sync, each check would get a new loop, so new
    connections, a new subscription and their teardown every time: enough work
    that a busy machine ran it past its limit. So each process keeps one loop,
    in a thread of its own, and one channel on it, from check to check; a check
    is then one PUBLISH and the message's return. A check that fails or runs
    out of time flushes the layer (its connections and subscriptions): the next
    one starts from new connections, as after a Redis restart it must."""

    def __init__(self):
        self.lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pid: int | None = None
        self.layer: BaseChannelLayer | None = None
        self.channel: str | None = None
        # A failed check's flush: it runs on after the check gave up waiting.
        self.flushing: asyncio.Future | None = None

    def __call__(self) -> None:
        future = asyncio.run_coroutine_threadsafe(self.round_trip(), self.event_loop())
        try:
            future.result(timeout=CHANNEL_LAYER_TIMEOUT)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(
                f"no message back through the channel layer within {CHANNEL_LAYER_TIMEOUT} s"
            ) from None

    def event_loop(self) -> asyncio.AbstractEventLoop:
        """This process's loop: a forked process (a Gunicorn worker) starts its
        own, since the thread that ran its parent's did not come with it."""
        with self.lock:
            if self.loop is None or self.pid != os.getpid():
                self.loop, self.pid = asyncio.new_event_loop(), os.getpid()
                self.layer, self.channel, self.flushing = None, None, None
                threading.Thread(
                    target=self.loop.run_forever, name="channel-layer-check", daemon=True
                ).start()
            return self.loop

    async def round_trip(self) -> None:
        layer = get_channel_layer()
        if layer is None:
            raise ConnectionError("no channel layer is configured (CHANNEL_LAYERS)")
        # The last failed check's flush, if it is still under way: it would
        # drop a channel this check subscribed meanwhile, and the check
        # would wait for its answer in vain.
        if self.flushing is not None:
            await self.flushing
            self.flushing = None
        try:
            # A new layer (its settings changed, as tests change them) has
            # none of the last one's channels.
            if self.channel is None or layer is not self.layer:
                self.layer, self.channel = layer, await layer.new_channel()
            channel, token = self.channel, secrets.token_hex(8)
            received = asyncio.ensure_future(self.receive(layer, channel, token))
            try:
                while not received.done():
                    await layer.send(channel, {"type": "readyz.ping", "token": token})
                    await asyncio.wait({received}, timeout=CHANNEL_LAYER_RESEND_SECONDS)
                received.result()
            finally:
                received.cancel()
        except BaseException:
            self.channel = None
            self.flushing = asyncio.ensure_future(self.flush(layer))
            await asyncio.shield(self.flushing)
            raise

    async def receive(self, layer: BaseChannelLayer, channel: str, token: str) -> None:
        """Until this check's ping: resent ones of earlier checks are skipped."""
        while (await layer.receive(channel)).get("token") != token:
            pass

    @staticmethod
    async def flush(layer: BaseChannelLayer) -> None:
        try:
            await asyncio.wait_for(layer.flush(), CHANNEL_LAYER_TIMEOUT)
        except Exception:
            # Its state is dropped all the same; the check's own error is the news.
            logger.warning("channel layer check: flushing the layer failed", exc_info=True)


channel_layer_check = ChannelLayerCheck()


READINESS_CHECKS: dict[str, Callable[[], None]] = {
    "database": database_check,
    "cache": lambda: cache_check(alias="default"),
    "channel_layer": channel_layer_check,
}
