"""The chat consumer through the project's whole ASGI application (origin check,
session and auth middleware, routing), with the real Redis channel layer."""

import asyncio
import json
import uuid

import pytest
from channels.testing import WebsocketCommunicator

from apps.demo.consumers import CLOSE_MESSAGE_TOO_BIG, MAX_FRAME_CHARS, MAX_MESSAGE_CHARS
from project.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

ALLOWED_ORIGIN = (b"origin", b"http://localhost:8000")


def room_path() -> str:
    return f"/ws/chat/test-{uuid.uuid4().hex[:12]}/"


async def connected(path, headers=(ALLOWED_ORIGIN,)) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path, headers=list(headers))
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
        ("not json", "Frames must be JSON."),
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
async def test_bad_frames_get_an_error_and_the_socket_stays_open(frame, error):
    client = await connected(room_path())
    await client.send_to(text_data=frame)
    assert json.loads(await client.receive_from()) == {"error": error}

    await client.send_to(text_data=json.dumps({"message": "still here"}))
    assert json.loads(await client.receive_from()) == {"message": "still here"}
    await client.disconnect()


async def test_binary_frames_get_an_error():
    client = await connected(room_path())
    await client.send_to(bytes_data=b"\x00\x01")
    assert json.loads(await client.receive_from()) == {"error": "Send text frames, not binary."}
    await client.disconnect()


async def test_messages_past_the_burst_are_refused(settings):
    # No refill during the test: only the burst gets through.
    settings.CHAT_MESSAGES_PER_SECOND = 0.001
    settings.CHAT_MESSAGE_BURST = 3
    client = await connected(room_path())
    for i in range(5):
        await client.send_to(text_data=json.dumps({"message": f"line {i}"}))
    replies = [json.loads(await client.receive_from()) for _ in range(5)]

    delivered = sorted(reply["message"] for reply in replies if "message" in reply)
    refused = [reply for reply in replies if "message" not in reply]
    assert delivered == ["line 0", "line 1", "line 2"]
    assert refused == [{"error": "Too many messages: slow down."}] * 2
    await client.disconnect()


async def test_oversized_frame_closes_the_socket():
    client = await connected(room_path())
    await client.send_to(text_data="x" * (MAX_FRAME_CHARS + 1))
    assert await client.receive_output() == {
        "type": "websocket.close",
        "code": CLOSE_MESSAGE_TOO_BIG,
    }


@pytest.mark.parametrize(
    "headers",
    [[(b"origin", b"https://evil.example")], []],
    ids=["foreign origin", "no origin"],
)
async def test_handshake_is_refused_without_an_allowed_origin(headers):
    communicator = WebsocketCommunicator(application, room_path(), headers=headers)
    accepted, _ = await communicator.connect()
    assert not accepted


async def test_idle_socket_outlives_redis_pys_read_timeout():
    # redis-py's default read timeout is 5 s: it once cut short the channel
    # layer's 5 s blocking reads and closed every idle socket with 1011.
    path = room_path()
    idle, talker = await connected(path), await connected(path)
    await asyncio.sleep(6)
    await talker.send_to(text_data=json.dumps({"message": "still there?"}))
    assert json.loads(await idle.receive_from(timeout=5)) == {"message": "still there?"}
    for communicator in (idle, talker):
        await communicator.disconnect()
