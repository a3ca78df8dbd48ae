"""What every WebSocket consumer needs, in one base class: subclass JsonConsumer
and write receive_json() (docs/development.md, "Your first app", shows one).

JsonConsumer takes care of:
- draining: a server that is stopping refuses new sockets, and closes the open
  ones with CLOSE_SERVICE_RESTART (4012) so that their clients reconnect,
  perhaps to another server (deploy/run-draining.sh, manage.py websockets_close);
- frame limits: a frame over max_frame_chars closes the socket with
  CLOSE_MESSAGE_TOO_BIG (4009); Daphne refuses anything over 64 KiB before it
  gets here (deploy/start-asgi.sh);
- JSON: a frame that is not JSON, or nested deeper than max_json_depth, or
  that receive_json() refuses by raising BadMessage, gets
  {"error": "<what is wrong>"}, and the socket stays open;
- metrics, with METRICS_PORT set: sockets open, accepted and closed (by close
  code), frames in and out, labelled with the consumer's class name
  (apps/core/metrics.py).

Each client's message budget is kept before any of this, where Daphne reads
the socket: a frame gets here only once its client's budget had room for it
(apps/core/websocket_budget.py).

Daphne lets an application close a socket only with 1000 or 3000-4999, so the
close codes are RFC 6455's plus 4000, as is the convention.
"""

import json
import logging
import time

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from .draining import CLOSE_SERVICE_RESTART, is_draining, server_group
from .metrics import ConsumerMetrics, channel_layer_round_trip
from .websocket_budget import CLOSE_POLICY_VIOLATION

# RFC 6455's 1009, "message too big".
CLOSE_MESSAGE_TOO_BIG = 4009

# Each line carries the socket's request id, method, path and client address,
# those of its handshake (apps/core/request_id.py).
logger = logging.getLogger(__name__)


class BadMessage(ValueError):
    """The client sent something this consumer cannot take. Its text is the
    error reply, so say what to send instead."""


def json_depth(value) -> int:
    """How deeply lists and objects nest in a parsed JSON value (a scalar is 0)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in children)
    return deepest


class JsonConsumer(AsyncWebsocketConsumer):
    """A WebSocket that speaks JSON, with the platform's limits and draining.

    Subclasses write connect() (join groups with group_join(), then accept())
    and receive_json(), and reply with send_json()."""

    # Text frames longer than this close the socket: no message of the
    # application is this long, so it is no honest client's.
    max_frame_chars = 16 * 1024
    # Deeper JSON gets an error reply: no message of the application nests
    # this deep, and what handles it (the channel layer's msgpack, code that
    # recurses) need never meet thousands of levels.
    max_json_depth = 32
    # The codes this consumer closes sockets with, each counted under its
    # own label in the metrics (any other a client picks counts as "other").
    # A subclass that closes with codes of its own adds them here. (Daphne
    # closes a socket over its client's budget with CLOSE_POLICY_VIOLATION.)
    close_codes = frozenset({CLOSE_MESSAGE_TOO_BIG, CLOSE_POLICY_VIOLATION, CLOSE_SERVICE_RESTART})
    # Closing: frames already on their way are dropped, unanswered.
    closing = False

    # This socket's counters once it is accepted, with METRICS_PORT set.
    metrics: ConsumerMetrics | None = None

    async def websocket_connect(self, message):
        if is_draining():
            # This server is stopping: refuse, and the client retries elsewhere.
            await self.close()
            return
        # This server's group, for the drain's "reconnect" notice. Channels
        # joins every group in self.groups before connect(), and leaves them
        # all when the socket closes.
        self.groups = [*self.groups, server_group()]
        await super().websocket_connect(message)

    async def accept(self, *args, **kwargs):
        await super().accept(*args, **kwargs)
        if settings.METRICS_PORT:
            self.metrics = ConsumerMetrics(type(self).__name__, self.close_codes)
            self.metrics.accepted()

    async def websocket_disconnect(self, message):
        if self.metrics:
            self.metrics.closed(message.get("code"))
            self.metrics = None
        await super().websocket_disconnect(message)

    async def dispatch(self, message):
        try:
            await super().dispatch(message)
        except BaseException:
            # A handler that raised ends the consumer (Daphne closes the
            # socket with 1011 and logs the error), and no websocket.disconnect
            # will reach it: count the close now, or the open-sockets gauge
            # would keep the socket for good. (StopConsumer, the usual end,
            # comes after websocket_disconnect has counted it.)
            if self.metrics:
                self.metrics.closed(1011)
                self.metrics = None
            raise

    async def group_join(self, group: str) -> None:
        """Join a channel-layer group for as long as this socket is open."""
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups.append(group)

    async def receive(self, text_data=None, bytes_data=None):
        if self.metrics:
            self.metrics.received.inc()
        if self.closing:
            return
        if text_data is None:
            await self.send_error("Send text frames, not binary.")
            return
        if len(text_data) > self.max_frame_chars:
            # Once per socket (it closes), so a client cannot flood the log.
            logger.warning(
                "Closing a WebSocket that sent a frame of %d characters (at most %d)",
                len(text_data),
                self.max_frame_chars,
            )
            self.closing = True
            await self.close(code=CLOSE_MESSAGE_TOO_BIG)
            return
        try:
            content = json.loads(text_data)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            await self.send_error("Frames must be JSON.")
            return
        if json_depth(content) > self.max_json_depth:
            await self.send_error(f"Messages may nest at most {self.max_json_depth} levels deep.")
            return
        try:
            await self.receive_json(content)
        except BadMessage as error:
            await self.send_error(str(error))

    async def receive_json(self, content):
        """A client's message, parsed. Raise BadMessage to refuse it."""
        raise BadMessage("This endpoint takes no messages.")

    async def send(self, text_data=None, bytes_data=None, close=False):
        if self.metrics:
            self.metrics.sent.inc()
        await super().send(text_data, bytes_data, close)

    async def send_json(self, content) -> None:
        await self.send(text_data=json.dumps(content))

    async def send_error(self, text: str) -> None:
        await self.send_json({"error": text})

    async def server_draining(self, event):
        """This server is stopping (manage.py websockets_close): reconnect."""
        await self.close(code=CLOSE_SERVICE_RESTART)


class PingConsumer(JsonConsumer):
    """/ws/ping/: answers {"ping": x} with {"pong": x}, after a round trip
    through the channel layer. It proves the whole WebSocket path (nginx,
    Daphne, Redis) for a synthetic check or a test, with no app of its own,
    and times the channel layer's part (channel_layer_round_trip_seconds)."""

    async def receive_json(self, content):
        if not isinstance(content, dict) or "ping" not in content:
            raise BadMessage('Send {"ping": <anything>}.')
        # The message comes back to this process: its own clock times it.
        await self.channel_layer.send(
            self.channel_name,
            {"type": "ping.echo", "ping": content["ping"], "sent": time.perf_counter()},
        )

    async def ping_echo(self, event):
        # Only this consumer's own message says when it was sent: anything
        # else may send ping.echo to the socket (a test, through its group).
        if settings.METRICS_PORT and "sent" in event:
            channel_layer_round_trip.observe(time.perf_counter() - event["sent"])
        await self.send_json({"pong": event["ping"]})
