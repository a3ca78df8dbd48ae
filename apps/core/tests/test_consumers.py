"""JsonConsumer, through /ws/ping/ and the project's whole ASGI application
(origin check, session and auth middleware, routing), with the real Redis
channel layer."""

import asyncio
import json

import pytest
from channels.layers import get_channel_layer

from apps.core import draining
from apps.core.consumers import (
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_POLICY_VIOLATION,
    JsonConsumer,
    client_budgets,
    json_depth,
)
from apps.core.draining import CLOSE_SERVICE_RESTART, server_group
from project.asgi import application
from tests.stack import Communicator

pytestmark = pytest.mark.django_db(transaction=True)


ALLOWED_ORIGIN = (b"origin", b"http://localhost:8000")


@pytest.fixture(autouse=True)
def no_budget_left_behind():
    """Each test disconnects every socket it opened, as Daphne tells a
    consumer even of a close the server made: no client's budget outlives
    its test, where a later test's exact counts would meet it."""
    assert len(client_budgets) == 0
    yield
    assert len(client_budgets) == 0, "a test left a client's budget behind"


async def connected(
    path="/ws/ping/", headers=(ALLOWED_ORIGIN,), client="192.0.2.1"
) -> Communicator:
    communicator = Communicator(application, path, headers=list(headers))
    # As Daphne gets it from nginx: a list, which ASGI allows (any two-item
    # iterable) and asgiref's types do not.
    communicator.scope["client"] = [client, 40000]  # type: ignore[typeddict-item]
    accepted, _ = await communicator.connect()
    assert accepted
    return communicator


async def test_ping_comes_back_through_the_channel_layer():
    client = await connected()
    await client.send_to(text_data=json.dumps({"ping": {"n": 1}}))
    assert json.loads(await client.receive_from()) == {"pong": {"n": 1}}
    await client.disconnect()


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("not json", "Frames must be JSON."),
        ('{"ping": ' + "[" * 8000 + "]" * 8000 + "}", "Messages may nest at most 32 levels deep."),
        ('{"ping": ' + "[" * 31 + "]" * 31 + "}", None),  # 32 deep: fine
        ("[1, 2]", 'Send {"ping": <anything>}.'),
        ('{"pong": 1}', 'Send {"ping": <anything>}.'),
    ],
    ids=["not json", "too deep", "deep enough", "a list", "no ping"],
)
async def test_bad_frames_get_an_error_and_the_socket_stays_open(frame, error):
    client = await connected()
    await client.send_to(text_data=frame)
    reply = json.loads(await client.receive_from())
    assert reply == ({"error": error} if error else {"pong": json.loads(frame)["ping"]})

    await client.send_to(text_data=json.dumps({"ping": "still here"}))
    assert json.loads(await client.receive_from()) == {"pong": "still here"}
    await client.disconnect()


async def test_binary_frames_get_an_error():
    client = await connected()
    await client.send_to(bytes_data=b"\x00\x01")
    reply = json.loads(await client.receive_from())
    assert reply == {"error": "Send text frames, not binary."}
    await client.disconnect()


async def test_messages_past_the_burst_are_refused(settings):
    # No refill during the test: only the burst gets through.
    settings.WEBSOCKET_MESSAGES_PER_SECOND = 0.001
    settings.WEBSOCKET_MESSAGE_BURST = 3
    client = await connected()
    for i in range(5):
        await client.send_to(text_data=json.dumps({"ping": i}))
    replies = [json.loads(await client.receive_from()) for _ in range(5)]

    answered = sorted(reply["pong"] for reply in replies if "pong" in reply)
    refused = [reply for reply in replies if "pong" not in reply]
    assert answered == [0, 1, 2]
    assert refused == [{"error": "Too many messages: slow down."}] * 2
    await client.disconnect()


async def test_binary_frames_take_from_the_budget_too(settings):
    settings.WEBSOCKET_MESSAGES_PER_SECOND = 0.001
    settings.WEBSOCKET_MESSAGE_BURST = 1
    client = await connected()
    await client.send_to(bytes_data=b"\x00\x01")
    assert json.loads(await client.receive_from()) == {"error": "Send text frames, not binary."}
    await client.send_to(text_data=json.dumps({"ping": 1}))
    assert json.loads(await client.receive_from()) == {"error": "Too many messages: slow down."}
    await client.disconnect()


async def test_a_socket_that_keeps_sending_past_its_budget_is_closed(settings):
    settings.WEBSOCKET_MESSAGES_PER_SECOND = 0.001
    settings.WEBSOCKET_MESSAGE_BURST = 2
    client = await connected()
    assert await pongs(client, 2) == 2
    refusals = JsonConsumer.max_refused_in_a_row
    for i in range(refusals - 1):  # each answered, none sent on
        await client.send_to(text_data=json.dumps({"ping": i}))
        assert json.loads(await client.receive_from()) == {"error": "Too many messages: slow down."}
    await client.send_to(bytes_data=b"\x00")  # binary or text, it counts
    assert await client.receive_output() == {
        "type": "websocket.close",
        "code": CLOSE_POLICY_VIOLATION,
    }
    await client.disconnect(code=CLOSE_POLICY_VIOLATION)


async def pongs(client: Communicator, count: int) -> int:
    """Send `count` pings; how many were answered rather than refused."""
    for i in range(count):
        await client.send_to(text_data=json.dumps({"ping": i}))
    replies = [json.loads(await client.receive_from()) for _ in range(count)]
    return sum("pong" in reply for reply in replies)


async def test_a_client_s_sockets_share_one_budget(settings):
    settings.WEBSOCKET_MESSAGES_PER_SECOND = 0.001
    settings.WEBSOCKET_MESSAGE_BURST = 4
    first, second = await connected(), await connected()
    assert await pongs(first, 3) == 3
    # Another socket of the same client's buys no more messages...
    assert await pongs(second, 3) == 1
    # ... nor does another address in the same IPv6 /64 ...
    neighbours = [
        await connected(client="2001:db8:1:2::a"),
        await connected(client="2001:db8:1:2:ffff::b"),
    ]
    assert await pongs(neighbours[0], 4) == 4
    assert await pongs(neighbours[1], 2) == 0
    # ... while another client has a budget of its own.
    stranger = await connected(client="198.51.100.7")
    assert await pongs(stranger, 4) == 4
    for client in (first, second, *neighbours, stranger):
        await client.disconnect()


async def test_a_client_s_budget_is_dropped_with_its_last_socket(settings):
    settings.WEBSOCKET_MESSAGES_PER_SECOND = 0.001
    settings.WEBSOCKET_MESSAGE_BURST = 2
    first, second = await connected(), await connected()
    assert await pongs(first, 2) == 2
    await first.disconnect()
    assert await pongs(second, 1) == 0  # still the same client's budget
    await second.disconnect()
    # Nothing is kept for a client with no socket open, so memory follows sockets.
    assert "192.0.2.1" not in client_budgets
    third = await connected()
    assert await pongs(third, 2) == 2
    await third.disconnect()


async def test_oversized_frame_closes_the_socket():
    client = await connected()
    await client.send_to(text_data="x" * (JsonConsumer.max_frame_chars + 1))
    assert await client.receive_output() == {
        "type": "websocket.close",
        "code": CLOSE_MESSAGE_TOO_BIG,
    }
    await client.disconnect(code=CLOSE_MESSAGE_TOO_BIG)


@pytest.mark.parametrize(
    "headers",
    [[(b"origin", b"https://evil.example")], []],
    ids=["foreign origin", "no origin"],
)
async def test_handshake_is_refused_without_an_allowed_origin(headers):
    communicator = Communicator(application, "/ws/ping/", headers=headers)
    accepted, _ = await communicator.connect()
    assert not accepted


async def test_a_path_no_route_serves_is_refused_not_an_error():
    communicator = Communicator(application, "/ws/nowhere/", headers=[ALLOWED_ORIGIN])
    # Without a route for every path, URLRouter raises here (a 500 in Daphne).
    accepted, _ = await communicator.connect()
    assert not accepted


async def test_a_draining_server_refuses_new_sockets(monkeypatch, tmp_path):
    monkeypatch.setattr(draining, "DRAIN_MARKER", tmp_path / "draining")
    draining.DRAIN_MARKER.touch()
    communicator = Communicator(application, "/ws/ping/", headers=[ALLOWED_ORIGIN])
    accepted, _ = await communicator.connect()
    assert not accepted


async def test_the_drain_closes_open_sockets_with_service_restart():
    client = await connected()
    # What manage.py websockets_close sends to this server's sockets.
    await get_channel_layer().group_send(server_group(), {"type": "server.draining"})
    assert await client.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": CLOSE_SERVICE_RESTART,
    }
    await client.disconnect(code=CLOSE_SERVICE_RESTART)


async def test_idle_socket_outlives_redis_pys_read_timeout():
    # redis-py's default read timeout is 5 s: it once cut short the channel
    # layer's 5 s blocking reads and closed every idle socket with 1011.
    idle = await connected()
    await asyncio.sleep(6)
    await idle.send_to(text_data=json.dumps({"ping": "still there?"}))
    assert json.loads(await idle.receive_from(timeout=5)) == {"pong": "still there?"}
    await idle.disconnect()


@pytest.mark.parametrize(
    ("value", "depth"),
    [(1, 0), ("x", 0), ([], 1), ({"a": [1, {"b": []}]}, 4), ([[], [[[]]]], 4)],
)
def test_json_depth(value, depth):
    assert json_depth(value) == depth


class Failing(JsonConsumer):
    async def connect(self):
        await self.accept()

    async def receive_json(self, content, **kwargs):
        raise RuntimeError("the consumer failed")


async def test_a_consumer_that_raises_gives_back_its_clients_budget():
    # No websocket.disconnect reaches a consumer that died of an error: what
    # its socket held is given back as it dies (the autouse fixture checks).
    communicator = Communicator(Failing.as_asgi(), "/ws/failing/")
    communicator.scope["client"] = ["192.0.2.7", 40000]
    accepted, _ = await communicator.connect()
    assert accepted
    assert "192.0.2.7" in client_budgets
    await communicator.send_to(text_data=json.dumps({"any": "thing"}))
    with pytest.raises(RuntimeError, match="the consumer failed"):
        await communicator.receive_from()
    assert "192.0.2.7" not in client_budgets
