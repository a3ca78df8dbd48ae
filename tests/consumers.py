"""What the consumers' unit tests share: a WebSocket client that waits as
long as a loaded machine needs."""

from channels.testing import WebsocketCommunicator

# How long a reply, a handshake or a close may take. channels' default, 1 s,
# is short on a loaded two-core machine, where each goes through Redis: a
# disconnect that overran it was cancelled before the consumer gave back its
# client's budget, and a later test met it. What comes does so in
# milliseconds, so a longer wait slows no passing test.
TIMEOUT = 5


class Communicator(WebsocketCommunicator):
    """channels' WebsocketCommunicator, with TIMEOUT as every wait's default.
    receive_nothing() keeps its own: it waits for what should not come."""

    async def connect(self, timeout=TIMEOUT):
        return await super().connect(timeout)

    async def disconnect(self, code=1000, timeout=TIMEOUT):
        return await super().disconnect(code, timeout)

    async def receive_from(self, timeout=TIMEOUT):
        return await super().receive_from(timeout)

    async def receive_json_from(self, timeout=TIMEOUT):
        return await super().receive_json_from(timeout)

    async def receive_output(self, timeout=TIMEOUT):
        return await super().receive_output(timeout)

    async def wait(self, timeout=TIMEOUT):
        return await super().wait(timeout)
