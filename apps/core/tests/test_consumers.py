"""JsonConsumer, through /ws/ping/ and the project's whole ASGI application
(origin check, session and auth middleware, routing), with the real Redis
channel layer."""

import asyncio
import json

import pytest
from channels.layers import get_channel_layer
from prometheus_client import REGISTRY

from apps.core import draining
from apps.core.consumers import CLOSE_MESSAGE_TOO_BIG, JsonConsumer, json_depth
from apps.core.draining import CLOSE_SERVICE_RESTART, server_group
from project.asgi import application
from tests.stack import Communicator

pytestmark = pytest.mark.django_db(transaction=True)


ALLOWED_ORIGIN = (b"origin", b"http://localhost:8000")


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


async def test_a_consumer_that_raises_is_counted_closed(settings):
    # No websocket.disconnect reaches a consumer that died of an error: its
    # socket is counted closed (1011) as it dies, or the open-sockets gauge
    # would keep it for good.
    settings.METRICS_PORT = 9100  # counted only where metrics are served

    def counts():
        labels = {"consumer": "Failing"}
        return (
            REGISTRY.get_sample_value("websocket_connections_open", labels),
            REGISTRY.get_sample_value("websocket_closes_total", labels | {"code": "1011"}) or 0,
        )

    communicator = Communicator(Failing.as_asgi(), "/ws/failing/")
    accepted, _ = await communicator.connect()
    assert accepted
    assert counts() == (1, 0)
    await communicator.send_to(text_data=json.dumps({"any": "thing"}))
    with pytest.raises(RuntimeError, match="the consumer failed"):
        await communicator.receive_from()
    assert counts() == (0, 1)
