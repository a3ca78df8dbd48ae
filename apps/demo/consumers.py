from apps.core.consumers import BadMessage, JsonConsumer

# A chat line longer than this gets an error reply.
MAX_MESSAGE_CHARS = 1000


def message_parse(content) -> str:
    """The chat line in a client's message, or BadMessage saying what is wrong."""
    message = content.get("message") if isinstance(content, dict) else None
    if not isinstance(message, str) or not message.strip():
        raise BadMessage('Send {"message": "<text>"}.')
    if len(message) > MAX_MESSAGE_CHARS:
        raise BadMessage(f"Messages are limited to {MAX_MESSAGE_CHARS} characters.")
    return message


class ChatConsumer(JsonConsumer):
    """Everyone connected to /ws/chat/<room>/ receives every message sent there,
    whichever Daphne process they are connected to: the group lives in Redis.
    Limits, draining and JSON come from JsonConsumer (apps/core/consumers.py)."""

    async def connect(self):
        self.room_group = f"chat_{self.scope['url_route']['kwargs']['room']}"
        await self.group_join(self.room_group)
        await self.accept()

    async def receive_json(self, content):
        message = message_parse(content)
        await self.channel_layer.group_send(
            self.room_group, {"type": "chat.message", "message": message}
        )

    async def chat_message(self, event):
        await self.send_json({"message": event["message"]})
