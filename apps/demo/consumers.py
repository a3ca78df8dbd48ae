from channels.db import database_sync_to_async

from apps.core.consumers import BadMessage, JsonConsumer

from .tasks import checksum_group
from .uploads import upload_list

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


class UploadsConsumer(JsonConsumer):
    """/ws/uploads/: the checksums of the visitor's own uploads, as the worker
    finishes them ({"upload": <storage name>, "sha256": <hex>}). The groups it
    joins are those of the uploads in the visitor's session (the cookie's,
    attached by AuthMiddlewareStack in project/asgi.py): the client names
    none, so no page can listen for another visitor's files. It takes no
    messages."""

    async def connect(self):
        session = self.scope["session"]
        for upload in await database_sync_to_async(upload_list)(session=session):
            await self.group_join(checksum_group(upload["storage_name"]))
        await self.accept()
        # A checksum recorded before this socket joined its group was
        # announced to no one: read them again now, and send those done.
        for upload in await database_sync_to_async(upload_list)(session=session):
            if upload["sha256"]:
                await self.send_json({"upload": upload["storage_name"], "sha256": upload["sha256"]})

    async def upload_checksum(self, event):
        await self.send_json({"upload": event["upload"], "sha256": event["sha256"]})
