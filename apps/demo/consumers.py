import json
import time

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from apps.health.draining import CLOSE_SERVICE_RESTART, is_draining, server_group

# A chat line longer than this gets an error reply; a frame longer than
# MAX_FRAME_CHARS is no chat line at all, and closes the socket.
MAX_MESSAGE_CHARS = 1000
MAX_FRAME_CHARS = 16 * 1024
# RFC 6455's "message too big" is 1009, but Daphne lets an application close
# only with 1000 or 3000-4999; 4000 plus the standard code is the convention.
CLOSE_MESSAGE_TOO_BIG = 4009


def message_parse(text: str) -> str:
    """The chat line in a client frame, or ValueError saying what is wrong with it."""
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError("Frames must be JSON.") from None
    message = payload.get("message") if isinstance(payload, dict) else None
    if not isinstance(message, str) or not message.strip():
        raise ValueError('Send {"message": "<text>"}.')
    if len(message) > MAX_MESSAGE_CHARS:
        raise ValueError(f"Messages are limited to {MAX_MESSAGE_CHARS} characters.")
    return message


class TokenBucket:
    """At most `rate` events a second on average, `burst` at once."""

    def __init__(self, *, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.tokens, self.updated = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class ChatConsumer(AsyncWebsocketConsumer):
    """Everyone connected to /ws/chat/<room>/ receives every message sent there,
    whichever Daphne process they are connected to: the group lives in Redis."""

    async def connect(self):
        if is_draining():
            # This server is stopping: refuse, and the client retries elsewhere.
            await self.close()
            return
        self.room_group = f"chat_{self.scope['url_route']['kwargs']['room']}"
        # The room, and this server's group for the drain's "reconnect" notice.
        # Channels discards every group in self.groups on disconnect.
        self.groups = [self.room_group, server_group()]
        for group in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.allowance = TokenBucket(
            rate=settings.CHAT_MESSAGES_PER_SECOND, burst=settings.CHAT_MESSAGE_BURST
        )
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        if bytes_data is not None:
            await self.send_json({"error": "Send text frames, not binary."})
            return
        if len(text_data) > MAX_FRAME_CHARS:
            await self.close(code=CLOSE_MESSAGE_TOO_BIG)
            return
        if not self.allowance.take():
            await self.send_json({"error": "Too many messages: slow down."})
            return
        try:
            message = message_parse(text_data)
        except ValueError as error:
            await self.send_json({"error": str(error)})
            return
        await self.channel_layer.group_send(
            self.room_group, {"type": "chat.message", "message": message}
        )

    async def chat_message(self, event):
        await self.send_json({"message": event["message"]})

    async def server_draining(self, event):
        """This server is stopping (manage.py websockets_close): reconnect."""
        await self.close(code=CLOSE_SERVICE_RESTART)

    async def send_json(self, content):
        await self.send(text_data=json.dumps(content))
