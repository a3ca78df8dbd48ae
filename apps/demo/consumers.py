import json

from channels.generic.websocket import AsyncWebsocketConsumer

# A chat line longer than this gets an error reply; a frame longer than
# MAX_FRAME_CHARS is no chat line at all, and closes the socket.
MAX_MESSAGE_CHARS = 1000
MAX_FRAME_CHARS = 16 * 1024
CLOSE_MESSAGE_TOO_BIG = 1009  # RFC 6455


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


class ChatConsumer(AsyncWebsocketConsumer):
    """Everyone connected to /ws/chat/<room>/ receives every message sent there,
    whichever Daphne process they are connected to: the group lives in Redis."""

    async def connect(self):
        self.group = f"chat_{self.scope['url_route']['kwargs']['room']}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        if bytes_data is not None:
            await self.send_json({"error": "Send text frames, not binary."})
            return
        if len(text_data) > MAX_FRAME_CHARS:
            await self.close(code=CLOSE_MESSAGE_TOO_BIG)
            return
        try:
            message = message_parse(text_data)
        except ValueError as error:
            await self.send_json({"error": str(error)})
            return
        await self.channel_layer.group_send(
            self.group, {"type": "chat.message", "message": message}
        )

    async def chat_message(self, event):
        await self.send_json({"message": event["message"]})

    async def send_json(self, content):
        await self.send(text_data=json.dumps(content))
