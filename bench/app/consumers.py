from apps.core.consumers import BadMessage, JsonConsumer


class RoomConsumer(JsonConsumer):
    """/ws/bench/room/<room>/: every message sent to a room reaches every
    socket in it, on whichever Daphne process: a chat room's broadcast."""

    async def connect(self):
        self.room_group = f"bench_{self.scope['url_route']['kwargs']['room']}"
        await self.group_join(self.room_group)
        await self.accept()

    async def receive_json(self, content):
        if not isinstance(content, dict) or not isinstance(content.get("message"), str):
            raise BadMessage('Send {"message": "<text>"}.')
        await self.channel_layer.group_send(
            self.room_group, {"type": "room.message", "message": content["message"]}
        )

    async def room_message(self, event):
        await self.send_json({"message": event["message"]})
