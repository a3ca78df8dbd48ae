"""The chat consumer through the project's whole ASGI application, with the
real Redis channel layer. What every consumer gets from JsonConsumer (limits,
draining, bad JSON) is tested in apps/core/tests/test_consumers.py."""

import json
import uuid

import pytest
from channels.testing import WebsocketCommunicator

from apps.demo.consumers import MAX_MESSAGE_CHARS
from project.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

ALLOWED_ORIGIN = (b"origin", b"http://localhost:8000")


def room_path() -> str:
    return f"/ws/chat/test-{uuid.uuid4().hex[:12]}/"


async def connected(path) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path, headers=[ALLOWED_ORIGIN])
    accepted, _ = await communicator.connect()
    assert accepted
    return communicator


async def test_message_reaches_everyone_in_the_room():
    path = room_path()
    alice, bob = await connected(path), await connected(path)
    outsider = await connected(room_path())

    await alice.send_to(text_data=json.dumps({"message": "hello"}))

    assert json.loads(await alice.receive_from()) == {"message": "hello"}
    assert json.loads(await bob.receive_from()) == {"message": "hello"}
    assert await outsider.receive_nothing()
    for communicator in (alice, bob, outsider):
        await communicator.disconnect()


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("[1, 2]", 'Send {"message": "<text>"}.'),
        ('{"text": "hi"}', 'Send {"message": "<text>"}.'),
        ('{"message": 42}', 'Send {"message": "<text>"}.'),
        ('{"message": "   "}', 'Send {"message": "<text>"}.'),
        (
            json.dumps({"message": "x" * (MAX_MESSAGE_CHARS + 1)}),
            f"Messages are limited to {MAX_MESSAGE_CHARS} characters.",
        ),
    ],
)
async def test_bad_messages_get_an_error_and_the_socket_stays_open(frame, error):
    client = await connected(room_path())
    await client.send_to(text_data=frame)
    assert json.loads(await client.receive_from()) == {"error": error}

    await client.send_to(text_data=json.dumps({"message": "still here"}))
    assert json.loads(await client.receive_from()) == {"message": "still here"}
    await client.disconnect()
