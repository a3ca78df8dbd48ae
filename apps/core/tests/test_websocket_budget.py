"""BudgetedWebSocketProtocol: Daphne's own WebSocket protocol, with Autobahn
parsing real frames from an in-memory transport, and a clock the test turns.
What the application is given is what lands on its queue, as under Daphne.
(tests/e2e/test_hostile_input.py floods the stack's Daphne through nginx.)"""

import asyncio
import struct
from collections.abc import Iterator

import pytest
from daphne.ws_protocol import WebSocketFactory
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

# As Daphne does: the application first, which has Daphne build its sockets'
# protocol from BudgetedWebSocketProtocol (Socket checks).
import project.asgi  # noqa: F401
from apps.core import websocket_budget
from apps.core.websocket_budget import (
    CLOSE_POLICY_VIOLATION,
    BudgetedWebSocketProtocol,
    ClientBudgets,
)

BURST, RATE, OVER_BUDGET_SECONDS = 3, 2, 5


@pytest.fixture(autouse=True)
def budgets(settings, monkeypatch) -> Iterator[ClientBudgets]:
    """This test's own registry of client budgets, with small numbers."""
    settings.WEBSOCKET_MESSAGE_BURST = BURST
    settings.WEBSOCKET_MESSAGES_PER_SECOND = RATE
    settings.WEBSOCKET_OVER_BUDGET_SECONDS = OVER_BUDGET_SECONDS
    budgets = ClientBudgets()
    monkeypatch.setattr(websocket_budget, "client_budgets", budgets)
    yield budgets
    assert len(budgets) == 0, "a test left a client's budget behind"


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """Twisted's and the budget's time, which the test moves on."""
    clock = Clock()
    monkeypatch.setattr(websocket_budget, "monotonic", clock.seconds)
    return clock


class Server:
    """What Daphne's protocol asks of Daphne's server: each socket's
    application is its queue."""

    root_path = ""
    proxy_forwarded_address_header = None

    def __init__(self):
        self.queues: list[asyncio.Queue] = []

    def create_application(self, protocol, scope):
        self.queues.append(asyncio.Queue())
        return self.queues[-1]

    def protocol_connected(self, protocol):
        pass

    def protocol_disconnected(self, protocol):
        pass

    def log_action(self, *args):
        pass


class Transport(StringTransport):
    """A TCP connection in memory. Twisted's own lets a protocol unregister a
    producer it never registered, as Autobahn does when it drops a
    connection; StringTransport does not."""

    def unregisterProducer(self):
        self.producer = None


class Socket:
    """One client socket, open on a BudgetedWebSocketProtocol."""

    def __init__(self, clock: Clock, client: str):
        factory = WebSocketFactory(Server(), reactor=clock)
        assert factory.protocol is BudgetedWebSocketProtocol
        self.protocol = factory.buildProtocol(None)
        self.protocol._raw_query_string = b""  # Daphne's HTTP protocol sets it
        self.transport = Transport(peerAddress=IPv4Address("TCP", client, 40000))
        self.protocol.makeConnection(self.transport)
        self.protocol.dataReceived(
            b"GET /ws/ping/ HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        self.protocol.handle_reply({"type": "websocket.accept"})
        assert self.transport.value().startswith(b"HTTP/1.1 101")
        self.transport.clear()
        self.queue = factory.server_class.queues[0]
        assert self.queue.get_nowait() == {"type": "websocket.connect"}

    def send(self, *texts: str, binary: bool = False) -> None:
        """Frames as a client writes them (masked), all in one read."""
        data = b""
        for text in texts:
            payload = text.encode()
            mask = b"\x01\x02\x03\x04"
            masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            opcode = 0x82 if binary else 0x81
            data += struct.pack("!BB", opcode, 0x80 | len(payload)) + mask + masked
        self.protocol.dataReceived(data)

    def received(self) -> list[str | bytes]:
        """What the application was given since last asked."""
        messages = []
        while not self.queue.empty():
            message = self.queue.get_nowait()
            messages.append(message.get("text", message.get("bytes", message["type"])))
        return messages

    @property
    def reading(self) -> bool:
        return self.transport.producerState == "producing"

    def close(self) -> None:
        """The connection is gone (what Twisted tells the protocol)."""
        self.protocol.connectionLost(Failure(ConnectionDone()))


def test_frames_past_the_burst_wait_and_nothing_after_them_is_read(clock):
    socket = Socket(clock, "192.0.2.1")
    socket.send(*(f"frame {i}" for i in range(6)))
    assert socket.received() == ["frame 0", "frame 1", "frame 2"]
    assert not socket.reading
    # What was read past the waiting frame stays as read, unparsed.
    assert len(socket.protocol.data) > 0

    clock.advance(1 / RATE)
    assert socket.received() == ["frame 3"]
    assert not socket.reading
    clock.advance(2 / RATE)
    assert socket.received() == ["frame 4", "frame 5"]
    # All of it through: the socket is read again.
    assert socket.reading
    socket.close()


def test_binary_frames_take_from_the_budget_too(clock):
    socket = Socket(clock, "192.0.2.1")
    socket.send(*(["x"] * (BURST + 1)), binary=True)
    assert socket.received() == [b"x"] * BURST
    assert not socket.reading
    socket.close()


def test_a_client_s_sockets_share_one_budget(clock):
    first, second = Socket(clock, "192.0.2.1"), Socket(clock, "192.0.2.1")
    first.send("a", "b")
    # Another socket of the same client's buys no more messages...
    second.send("c", "d")
    assert (first.received(), second.received()) == (["a", "b"], ["c"])
    # ... while another client has a budget of its own.
    stranger = Socket(clock, "198.51.100.7")
    stranger.send("e", "f", "g")
    assert stranger.received() == ["e", "f", "g"]
    for socket in (first, second, stranger):
        socket.close()


def test_an_ipv6_client_is_its_64(clock):
    first, neighbour = Socket(clock, "2001:db8:1:2::a"), Socket(clock, "2001:db8:1:2:ffff::b")
    first.send(*["x"] * BURST)
    neighbour.send("y")
    assert neighbour.received() == []
    for socket in (first, neighbour):
        socket.close()


def test_a_client_s_budget_is_dropped_with_its_last_socket(clock, budgets):
    first, second = Socket(clock, "192.0.2.1"), Socket(clock, "192.0.2.1")
    first.send(*["x"] * BURST)
    first.close()
    second.send("y")
    assert second.received() == []  # still the same client's budget
    second.close()
    # Nothing is kept for a client with no socket open, so memory follows sockets.
    assert "192.0.2.1" not in budgets
    third = Socket(clock, "192.0.2.1")
    third.send(*["z"] * BURST)
    assert third.received() == ["z"] * BURST
    third.close()


def test_a_socket_that_slows_down_is_never_closed(clock):
    socket = Socket(clock, "192.0.2.1")
    # Bursts a frame past the budget, again and again, for far longer than
    # a socket may wait; each time the wait is over, it sends no more until
    # the budget is whole again.
    for burst in range(4 * OVER_BUDGET_SECONDS):
        socket.send(*(f"{burst}.{i}" for i in range(BURST + 1)))
        clock.advance(1 / RATE)
        assert socket.received() == [f"{burst}.{i}" for i in range(BURST + 1)]
        clock.advance(BURST / RATE)
    assert socket.reading and not socket.transport.disconnecting
    socket.close()


def test_a_socket_that_keeps_sending_past_its_budget_is_closed(clock):
    socket = Socket(clock, "192.0.2.1")
    socket.send(*(str(i) for i in range(100)))
    # Its frames go on at the budget's pace while they wait, without a break...
    clock.pump([1 / RATE] * (OVER_BUDGET_SECONDS * RATE - 1))
    assert not socket.transport.disconnecting
    clock.advance(1 / RATE)
    # ... and once they have waited that long, the socket is closed (4008),
    # and dropped once the close frame is out: nothing more is read.
    close = bytes([0x88, 2]) + struct.pack("!H", CLOSE_POLICY_VIOLATION)
    assert socket.transport.value() == close
    assert socket.transport.disconnecting
    answered = socket.received()
    assert answered == [str(i) for i in range(BURST + OVER_BUDGET_SECONDS * RATE)]
    # The application is told why, when the connection is gone.
    socket.close()
    assert socket.queue.get_nowait() == {"type": "websocket.disconnect", "code": 4008}
