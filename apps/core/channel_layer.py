"""channels-redis's pub/sub layer, whose subscriptions are in place when
group_add() (and new_channel()) returns.

The library's subscribe() writes SUBSCRIBE on the layer's pub/sub connection
and returns without waiting for Redis's answer, which that connection's
receiving task reads later. A message published on any other connection (this
process's group_send(), or another Daphne replica's) right after group_add()
returned could reach Redis first, and Redis then hands it to no one: lost, not
late. A test sending to groups at once after joining them lost a few of every
3,000 (apps/core/tests/test_channel_layer.py).

So each subscribe() here is followed by a PING on the same connection, and
returns once its PONG is back: Redis answers a connection's commands in order,
so by then the SUBSCRIBE has been done, and every later PUBLISH, from anywhere,
reaches this process. That is one round trip to Redis per join.

And its receiving task waits for a message up to a second at a time, where
the library's waits a tenth: each wait that ends with nothing wakes the
process, and every process that ever subscribed (each Gunicorn worker, for
its readiness check) woke ten times a second for as long as it ran, about
2 ms of CPU a second each (docs/performance.md, the stack at rest). A
message ends the wait as soon as it comes, so none is later for it.
"""

import asyncio
import logging
import secrets

from channels_redis.pubsub import (
    RedisPubSubChannelLayer,
    RedisPubSubLoopLayer,
    RedisSingleShardConnection,
)
from channels_redis.utils import _wrap_close, decode_hosts

logger = logging.getLogger("channels_redis.pubsub")

# How long a join waits for Redis to confirm its subscription before it fails
# (the socket's handshake with it): long enough for a busy Redis, short
# enough that a client whose handshake failed soon tries again.
SUBSCRIBE_CONFIRM_TIMEOUT = 5  # seconds
# How long the receiving task waits for a message before it looks again
# (the library's 0.1): under the connection's socket_timeout (10 s).
RECEIVE_WAIT_SECONDS = 1


class ConfirmedShardConnection(RedisSingleShardConnection):
    """One Redis server's connections, whose subscribe() returns once Redis
    has done it."""

    def __init__(self, host, channel_layer):
        super().__init__(host, channel_layer)
        # PINGs sent and not yet answered: their token, and who waits.
        self.pongs_awaited: dict[bytes, asyncio.Future] = {}

    async def subscribe(self, channel):
        # Whether this call subscribed or another did before it (and may
        # still be waiting for Redis): the PING comes after either SUBSCRIBE.
        await super().subscribe(channel)
        token = secrets.token_hex(8).encode()
        pong = self.pongs_awaited[token] = asyncio.get_running_loop().create_future()
        try:
            async with self._lock:
                if channel not in self._subscribed_to:
                    # The layer was flushed meanwhile: its subscriptions are gone.
                    raise ConnectionError(f"the subscription to {channel} was dropped")
                await self._pubsub.ping(token)
            await asyncio.wait_for(pong, SUBSCRIBE_CONFIRM_TIMEOUT)
        finally:
            del self.pongs_awaited[token]

    async def flush(self):
        await super().flush()
        # Their PONGs will not come: the connection they were sent on is closed.
        for pong in self.pongs_awaited.values():
            if not pong.done():
                pong.set_exception(ConnectionError("the channel layer was flushed"))

    async def _do_receiving(self):
        # The library's loop, with a longer wait while subscribed. Not
        # subscribed (no channel yet, or none left), it looks every 0.1 s as
        # the library does: a first SUBSCRIBE's PING is answered at once.
        while True:
            try:
                if self._pubsub and self._pubsub.subscribed:
                    message = await self._pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=RECEIVE_WAIT_SECONDS
                    )
                    self._receive_message(message)
                else:
                    await asyncio.sleep(0.1)
            except (TimeoutError, asyncio.CancelledError, GeneratorExit):
                raise
            except BaseException:
                logger.exception("Unexpected exception in receive task")
                await asyncio.sleep(1)

    def _receive_message(self, message):
        # The receiving task's every message: a PONG is ours, not a channel's.
        if message is not None and message["type"] == "pong":
            pong = self.pongs_awaited.get(message["data"])
            if pong is not None and not pong.done():
                pong.set_result(None)
            return
        super()._receive_message(message)


class ConfirmedLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, hosts=None, **kwargs):
        super().__init__(hosts=hosts, **kwargs)
        self._shards = [ConfirmedShardConnection(host, self) for host in decode_hosts(hosts)]


class ConfirmedRedisPubSubChannelLayer(RedisPubSubChannelLayer):
    """RedisPubSubChannelLayer, with ConfirmedShardConnection's subscriptions.
    Like it, one layer per event loop (as the library's _get_layer())."""

    def _get_layer(self):
        loop = asyncio.get_running_loop()
        if loop not in self._layers:
            self._layers[loop] = ConfirmedLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            _wrap_close(self, loop)
        return self._layers[loop]
