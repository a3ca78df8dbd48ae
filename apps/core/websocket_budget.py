"""Each client's WebSocket frames, read no faster than its message budget.

A client (an IPv4 address or an IPv6 /64: apps/core/clients.py) may send
WEBSOCKET_MESSAGES_PER_SECOND messages a second on average, over all its
WebSockets on this server, in bursts of up to WEBSOCKET_MESSAGE_BURST. The
budget is kept where Daphne reads the socket, before anything else is done
with a frame: one that finds the budget spent waits, and Daphne reads nothing
more from that socket until the budget has room for it. What the client sends
meanwhile stays in its own TCP buffers, and nginx's, so a client flooding
frames costs this server what a client sending at its budget costs, and the
other sockets do not wait behind the flood (docs/performance.md, scenario
13). Nothing is refused or lost: a client that bursts past its budget is
answered a little later.

A socket whose frames have had to wait, with no frame going through without
waiting, for WEBSOCKET_OVER_BUDGET_SECONDS is closed with
CLOSE_POLICY_VIOLATION (4008): a client that never slows down is cut off,
and what it sent after is never read.

project/asgi.py has Daphne use BudgetedWebSocketProtocol, under
deploy/start-asgi.sh as under runserver.
"""

import logging
from time import monotonic

from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from django.conf import settings

from .clients import client_network

# RFC 6455's 1008, "policy violation", plus 4000 as the application's codes
# are (apps/core/consumers.py): frames kept coming past the budget.
CLOSE_POLICY_VIOLATION = 4008

logger = logging.getLogger(__name__)


class TokenBucket:
    """At most `rate` events a second on average, `burst` at once."""

    def __init__(self, *, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.tokens, self.updated = float(burst), monotonic()

    def _refill(self) -> None:
        now = monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def take(self) -> bool:
        self._refill()
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def seconds_to_next(self) -> float:
        """How long until take() can succeed."""
        self._refill()
        return max(0.0, (1 - self.tokens) / self.rate)


class ClientBudgets:
    """One TokenBucket per client in this process, shared by all of that
    client's sockets and dropped with the last of them: opening more sockets
    does not buy more messages.

    Each server keeps its own, so a client whose sockets nginx spreads over N
    asgi replicas has at most N budgets: bounded by the replicas, never by the
    sockets it opens (which nginx caps per client too)."""

    def __init__(self):
        self._held: dict[str | None, tuple[TokenBucket, int]] = {}

    def take_one(self, client: str | None) -> TokenBucket:
        """The client's bucket, for a socket it opens."""
        bucket, sockets = self._held.get(client, (None, 0))
        if bucket is None:
            bucket = TokenBucket(
                rate=settings.WEBSOCKET_MESSAGES_PER_SECOND, burst=settings.WEBSOCKET_MESSAGE_BURST
            )
        self._held[client] = (bucket, sockets + 1)
        return bucket

    def __contains__(self, client: str | None) -> bool:
        return client in self._held

    def __len__(self) -> int:
        """How many clients hold a budget here."""
        return len(self._held)

    def give_back(self, client: str | None) -> None:
        """A socket of the client's has closed."""
        bucket, sockets = self._held[client]
        if sockets == 1:
            del self._held[client]
        else:
            self._held[client] = (bucket, sockets - 1)


client_budgets = ClientBudgets()


class BudgetedWebSocketProtocol(WebSocketProtocol):
    """Daphne's WebSocket protocol, with each frame taking from its client's
    budget before it is passed on, and no more read while one waits."""

    # The frame that found the budget spent (its payload, whether binary),
    # and the call that tries it again when the budget has room.
    waiting: tuple[bytes, bool] | None = None
    retry = None
    # Since when this socket's frames have had to wait without a break.
    over_budget_since: float | None = None
    closed_over_budget = False

    def onOpen(self):
        # Daphne took the client's address from nginx's X-Forwarded-For
        # (deploy/start-asgi.sh: --proxy-headers).
        self.client = client_network(self.client_addr[0] if self.client_addr else None)
        self.budget = client_budgets.take_one(self.client)
        super().onOpen()

    def onMessage(self, payload, isBinary):
        if self.budget.take():
            self.over_budget_since = None
            super().onMessage(payload, isBinary)
            return
        if self.over_budget_since is None:
            self.over_budget_since = monotonic()
        self.wait(payload, isBinary)

    def wait(self, payload: bytes, is_binary: bool) -> None:
        """Hold this frame, and read no more, until the budget has room."""
        assert self.over_budget_since is not None  # set before any frame waits
        waited = monotonic() - self.over_budget_since
        if waited >= settings.WEBSOCKET_OVER_BUDGET_SECONDS:
            self.close_over_budget(waited)
            return
        self.waiting = (payload, is_binary)
        self.transport.pauseProducing()
        self.retry = self.factory.reactor.callLater(self.budget.seconds_to_next(), self.try_again)

    def processData(self):
        # Autobahn parses what was read a frame at a time, for as long as
        # this says there is more: not past a frame that waits. The rest
        # stays as read, at most one read's worth.
        return self.waiting is None and super().processData()

    def try_again(self) -> None:
        self.retry = None
        assert self.waiting is not None  # scheduled only for a frame that waits
        payload, is_binary = self.waiting
        self.waiting = None
        if self.state != self.STATE_OPEN:
            return
        if not self.budget.take():
            # Another of the client's sockets took what the budget had.
            self.wait(payload, is_binary)
            return
        super().onMessage(payload, is_binary)
        # On with what was read already, which may wait in turn, then with
        # the socket.
        self.consumeData()
        if self.waiting is None and self.state == self.STATE_OPEN:
            self.transport.resumeProducing()

    def close_over_budget(self, waited: float) -> None:
        # Once per socket (it closes), so a client cannot flood the log.
        logger.warning(
            "Closing a WebSocket of %s's whose frames have waited on its budget for %.1f s",
            self.client,
            waited,
        )
        self.closed_over_budget = True
        self.sendClose(code=CLOSE_POLICY_VIOLATION)
        # Gone once the close frame is sent: what the client sent after the
        # flood began is never read, its reply to the close included.
        self.dropConnection(abort=False)

    def onClose(self, wasClean, code, reason):
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None
        if hasattr(self, "budget"):  # never taken for a handshake refused
            client_budgets.give_back(self.client)
            del self.budget
        if self.closed_over_budget:
            # Not the 1006 of a close handshake this side cut short: the
            # application, and its metrics, see why the socket closed.
            code = CLOSE_POLICY_VIOLATION
        super().onClose(wasClean, code, reason)


def read_websockets_within_budget() -> None:
    """Have Daphne serve every WebSocket with BudgetedWebSocketProtocol.
    Autobahn's factories build each connection's protocol from their
    `protocol` attribute; Daphne builds its factory when it starts serving,
    after it has imported the application."""
    WebSocketFactory.protocol = BudgetedWebSocketProtocol
