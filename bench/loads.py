"""The load generators: wrk for HTTP, asyncio clients for WebSockets and Redis.

Each function measures one side of a comparison once and returns plain
numbers; bench/run.py alternates the sides and takes the medians.
"""

import asyncio
import contextlib
import json
import math
import re
import statistics
import subprocess
import time
import uuid
from dataclasses import dataclass

import redis.asyncio as redis
import websockets
from websockets.protocol import State

# What the stack answers to (DJANGO_ALLOWED_HOSTS): the Host and Origin every
# request carries, whichever address it is sent to.
HOST = "localhost"
ORIGIN = f"http://{HOST}"


# --- HTTP -------------------------------------------------------------------

WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass
class HttpResult:
    requests: int
    rate: float  # requests per second
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors, and answers other than 2xx or 3xx


def wrk(
    url: str,
    *,
    seconds: float,
    connections: int = 32,
    threads: int = 2,
    headers: tuple[str, ...] = (),
) -> HttpResult:
    """wrk against `url` for `seconds`, with the stack's Host header and
    `headers` ("Name: value") on every request."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    command += ["-H", f"Host: {HOST}"]
    for header in headers:
        command += ["-H", header]
    command.append(url)
    # The command is fixed above; only numbers and the URL vary.
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout  # noqa: S603
    return wrk_parse(output)


def wrk_parse(output: str) -> HttpResult:
    def latency_ms(percent: str) -> float:
        value, unit = re.search(rf"^\s+{percent}%\s+([\d.]+)(\w+)", output, re.M).groups()
        return float(value) * WRK_UNITS[unit]

    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return HttpResult(
        requests=int(re.search(r"(\d+) requests in", output)[1]),
        rate=float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]),
        p50_ms=latency_ms("50"),
        p99_ms=latency_ms("99"),
        errors=errors + (int(non_2xx[1]) if non_2xx else 0),
    )


@dataclass
class PacedResult:
    requests: int
    offered_rate: float  # requests per second sent, on schedule
    fast_p50_ms: float
    fast_p99_ms: float
    slow_p50_ms: float
    slow_p99_ms: float
    errors: int  # failed connections, and answers other than 2xx or 3xx


async def http_get(pool: list, address: tuple[str, int], path: str) -> int:
    """GET `path` on a kept-alive connection from `pool` (or a new one), read the
    whole answer, put the connection back, and return the status."""
    reader, writer = pool.pop() if pool else await asyncio.open_connection(*address)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
    status = int(head.split(None, 2)[1])
    length = re.search(r"^content-length:\s*(\d+)", head, re.M)
    if length:
        await reader.readexactly(int(length[1]))
    elif "transfer-encoding: chunked" in head:
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")
    if "connection: close" in head:
        writer.close()
    else:
        pool.append((reader, writer))
    return status


async def paced(
    address: tuple[str, int],
    *,
    fast_path: str,
    rate: float,
    seconds: float,
    slow_path: str = "",
    slow_every: int = 0,
) -> PacedResult:
    """An open-loop load, as wrk2 sends it: `rate` requests a second, each sent
    at its scheduled time whether or not earlier ones have been answered, one
    in `slow_every` to `slow_path` (none when 0), the rest to `fast_path`. A
    latency runs from the scheduled time, not from when a connection was
    free, so a server that falls behind is charged for the whole wait (no
    coordinated omission)."""
    pool: list = []
    latencies: dict[bool, list[float]] = {True: [], False: []}
    errors = 0

    async def one(scheduled: float, slow: bool) -> None:
        nonlocal errors
        try:
            status = await asyncio.wait_for(
                http_get(pool, address, slow_path if slow else fast_path), timeout=30
            )
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            errors += 1
            return
        if status >= 400:
            errors += 1
        latencies[slow].append((time.perf_counter() - scheduled) * 1000)

    count = int(rate * seconds)
    started = time.perf_counter()
    tasks = []
    for index in range(count):
        scheduled = started + index / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        slow = bool(slow_every) and index % slow_every == slow_every // 2
        tasks.append(asyncio.create_task(one(scheduled, slow)))
    await asyncio.gather(*tasks)
    for _, writer in pool:
        writer.close()
    return PacedResult(
        requests=count,
        offered_rate=rate,
        fast_p50_ms=percentile(latencies[False], 50),
        fast_p99_ms=percentile(latencies[False], 99),
        slow_p50_ms=percentile(latencies[True], 50),
        slow_p99_ms=percentile(latencies[True], 99),
        errors=errors,
    )


# --- WebSockets ---------------------------------------------------------------


async def ws_connect(address: tuple[str, int], path: str, client: str | None = None):
    """A WebSocket to `path` on `address`, as a browser on the site would open it;
    with `client`, as the browser at that address behind nginx (X-Forwarded-For).
    No client pings: Daphne pings, and the client answers."""
    host, port = address
    return await websockets.connect(
        f"ws://{HOST}{path}",
        host=host,
        port=port,
        origin=ORIGIN,
        additional_headers={"X-Forwarded-For": client} if client else None,
        ping_interval=None,
        open_timeout=60,
        close_timeout=5,
    )


async def ws_connect_many(addresses: list[tuple[str, int]], paths: list[str], parallel: int = 64):
    """One connection per path, spread over `addresses` in turn, `parallel`
    handshakes at a time. Returns the connections and the number that failed."""
    gate = asyncio.Semaphore(parallel)

    async def one(index: int, path: str):
        async with gate:
            try:
                return await ws_connect(addresses[index % len(addresses)], path)
            except (OSError, TimeoutError, websockets.WebSocketException):
                return None

    results = await asyncio.gather(*(one(i, path) for i, path in enumerate(paths)))
    connections = [c for c in results if c is not None]
    return connections, len(results) - len(connections)


async def ws_close_all(connections, parallel: int = 256) -> None:
    gate = asyncio.Semaphore(parallel)

    async def one(connection):
        async with gate:
            # A socket already gone is closed enough.
            with contextlib.suppress(Exception):
                await connection.close()

    await asyncio.gather(*(one(c) for c in connections))


def percentile(values: list[float], percent: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))]


@dataclass
class EchoResult:
    messages: int
    rate: float  # round trips per second, all clients together
    p50_ms: float
    p99_ms: float


async def echo(addresses: list[tuple[str, int]], *, clients: int, seconds: float) -> EchoResult:
    """`clients` WebSockets to /ws/ping/, each sending a ping and waiting for
    its pong to come back (through the channel layer), for `seconds`."""
    connections, failed = await ws_connect_many(addresses, ["/ws/ping/"] * clients)
    if failed:
        await ws_close_all(connections)
        raise RuntimeError(f"{failed} of {clients} echo clients could not connect")
    latencies: list[float] = []
    message = "x" * 64
    frame = json.dumps({"ping": message})
    deadline = time.perf_counter() + seconds

    async def client(connection):
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            await connection.send(frame)
            reply = json.loads(await connection.recv())
            if reply != {"pong": message}:
                # An error reply ("slow down") is no round trip through the
                # channel layer: the measurement would be of something else.
                raise RuntimeError(f"echo answered with {reply}")
            latencies.append((time.perf_counter() - sent) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in connections))
    elapsed = time.perf_counter() - started
    await ws_close_all(connections)
    return EchoResult(
        messages=len(latencies),
        rate=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
    )


class Fanout:
    """Subscribers that note when each message reaches them, so that a sender
    can wait for the moment the last of them has it."""

    def __init__(self, subscribers: int):
        self.subscribers = subscribers
        self.arrivals: dict[str, int] = {}
        self.everyone = asyncio.Event()
        self.last_arrival = 0.0

    def arrived(self, tag: str) -> None:
        self.arrivals[tag] = self.arrivals.get(tag, 0) + 1
        if self.arrivals[tag] == self.subscribers:
            self.last_arrival = time.perf_counter()
            self.everyone.set()

    async def time_to_last(self, send) -> float:
        """Milliseconds from calling `send(tag)` until every subscriber has the tag."""
        tag = uuid.uuid4().hex
        self.everyone.clear()
        sent = time.perf_counter()
        await send(tag)
        await asyncio.wait_for(self.everyone.wait(), timeout=30)
        return (self.last_arrival - sent) * 1000


class ChatRoomFanout(Fanout):
    """`subscribers` clients in one room, spread over `addresses` (the Daphne
    processes) in turn; one of them sends."""

    async def open(self, addresses: list[tuple[str, int]]) -> None:
        path = f"/ws/bench/room/{uuid.uuid4().hex[:12]}/"
        self.connections, failed = await ws_connect_many(addresses, [path] * self.subscribers)
        if failed:
            raise RuntimeError(f"{failed} of {self.subscribers} room clients could not connect")
        self.readers = [asyncio.create_task(self.read(c)) for c in self.connections]

    async def read(self, connection) -> None:
        async for frame in connection:
            self.arrived(json.loads(frame)["message"])

    async def broadcast(self) -> float:
        # A different member speaks each time, as in a real room.
        self.sent = getattr(self, "sent", 0) + 1
        sender = self.connections[self.sent % len(self.connections)]
        return await self.time_to_last(lambda tag: sender.send(json.dumps({"message": tag})))

    async def close(self) -> None:
        await ws_close_all(self.connections)
        for reader in self.readers:
            reader.cancel()


class RedisFanout(Fanout):
    """The floor: `subscribers` Redis connections SUBSCRIBEd to one channel, and
    one PUBLISH, with nothing of Django, Channels or WebSockets in between."""

    async def open(self, url: str, *, password: str | None = None) -> None:
        self.channel = f"bench-broadcast-{uuid.uuid4().hex[:12]}"
        self.clients = [redis.from_url(url, password=password) for _ in range(self.subscribers + 1)]
        self.pubsubs = [client.pubsub() for client in self.clients[1:]]
        for pubsub in self.pubsubs:
            await pubsub.subscribe(self.channel)
            # The subscription is confirmed before the first PUBLISH is timed.
            await pubsub.get_message(timeout=5)
        self.readers = [asyncio.create_task(self.read(p)) for p in self.pubsubs]

    async def read(self, pubsub) -> None:
        async for message in pubsub.listen():
            if message["type"] == "message":
                self.arrived(message["data"].decode())

    async def broadcast(self) -> float:
        publisher = self.clients[0]
        return await self.time_to_last(lambda tag: publisher.publish(self.channel, tag))

    async def close(self) -> None:
        for reader in self.readers:
            reader.cancel()
        for pubsub in self.pubsubs:
            await pubsub.aclose()
        for client in self.clients:
            await client.aclose()


@dataclass
class IdleResult:
    target: int
    opened: int
    held: int  # still open, and answering a ping, after the hold
    dropped: int  # opened, but closed or silent by the end
    close_codes: dict  # why the dropped ones closed: close code -> count


async def idle_open(addresses, count: int):
    paths = ["/ws/ping/"] * count
    return await ws_connect_many(addresses, paths)


async def idle_check(connections, target: int) -> IdleResult:
    """After the hold: which connections are still open and answer a ping."""
    gate = asyncio.Semaphore(512)

    async def alive(connection) -> bool:
        if connection.state is not State.OPEN:
            return False
        async with gate:
            try:
                pong = await connection.ping()
                await asyncio.wait_for(pong, timeout=30)
                return True
            except Exception:
                return False

    answers = await asyncio.gather(*(alive(c) for c in connections))
    held = sum(answers)
    close_codes: dict = {}
    for connection, answered in zip(connections, answers, strict=True):
        if not answered:
            code = str(connection.close_code)
            close_codes[code] = close_codes.get(code, 0) + 1
    return IdleResult(
        target=target,
        opened=len(connections),
        held=held,
        dropped=len(connections) - held,
        close_codes=close_codes,
    )


def median(values):
    return statistics.median(values)


# --- 13: one client's flood ---------------------------------------------------

# Daphne takes a client's address from X-Forwarded-For (deploy/start-asgi.sh:
# --proxy-headers), which nginx writes in production; the bench, straight to
# Daphne, writes it as nginx would for clients of these addresses
# (documentation ranges), so that each client has a message budget of its own
# (apps/core/consumers.py, one a client address), as distinct clients do
# behind nginx. One address for the flooder: it is one client.
FLOODER_ADDRESS = "203.0.113.66"


def measurer_address(index: int) -> str:
    return f"198.51.100.{index + 1}"


@dataclass
class FloodResult:
    seconds: float  # from the start to the stop
    frames: int  # frames written to its sockets
    sockets: int  # sockets opened, one after another on each of its lanes
    closes_4008: int  # sockets the server closed for frames waiting on the budget
    other_closes: int  # sockets closed otherwise (by the server, or failed to open)
    replies: int  # frames the server sent back (pongs)


async def flood(address: tuple[str, int], *, lanes: int, stopping: asyncio.Event) -> FloodResult:
    """One client (FLOODER_ADDRESS) sending pings as fast as it can on `lanes`
    sockets at once until `stopping` is set. The server reads the client's
    frames no faster than its budget, and closes a socket whose frames have
    waited on it too long (4008; a socket closed with the flood still unread
    may see its connection dropped instead); each lane then opens another at
    once and goes on, so that the pressure never lets up. bench/flood.py
    runs it."""
    found = FloodResult(0.0, 0, 0, 0, 0, 0)
    frame = json.dumps({"ping": "x" * 64})
    open_now: set = set()

    async def abort_at_stop() -> None:
        # Gone at once, whatever each lane awaits (a send behind a full
        # buffer, the server's close): no close handshake behind the flood.
        await stopping.wait()
        found.seconds = time.perf_counter() - started
        for connection in open_now:
            connection.transport.abort()
        # A lane still opening a socket (a handshake Daphne has yet to
        # answer) is cancelled rather than waited for.
        await asyncio.sleep(2)
        for task in lanes_running:
            task.cancel()

    async def read(connection) -> None:
        # Read every reply, so that the server's close frame is read too and
        # the socket ends when the server says (unread replies would fill the
        # client's queue and stop it reading).
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _ in connection:
                found.replies += 1

    async def lane() -> None:
        while not stopping.is_set():
            try:
                connection = await ws_connect(address, "/ws/ping/", FLOODER_ADDRESS)
            except (OSError, TimeoutError, websockets.WebSocketException):
                found.other_closes += 1
                await asyncio.sleep(0.01)
                continue
            found.sockets += 1
            open_now.add(connection)
            if stopping.is_set():
                connection.transport.abort()
            reader = asyncio.create_task(read(connection))
            try:
                while not stopping.is_set():
                    await connection.send(frame)
                    found.frames += 1
                    # send() returns at once while the socket's buffer has
                    # room: a turn for the reader, and for the other lanes.
                    if found.frames % 32 == 0:
                        await asyncio.sleep(0)
            except websockets.ConnectionClosed:
                pass
            await reader
            open_now.discard(connection)
            if stopping.is_set():
                break
            if connection.close_code == 4008:
                found.closes_4008 += 1
            else:
                found.other_closes += 1

    started = time.perf_counter()
    lanes_running = [asyncio.create_task(lane()) for _ in range(lanes)]
    aborter = asyncio.create_task(abort_at_stop())
    await asyncio.gather(*lanes_running, return_exceptions=True)
    aborter.cancel()
    return found


@dataclass
class PingResult:
    pings: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # replies other than the ping's own pong, and sockets that failed


async def paced_pings(
    address: tuple[str, int], *, clients: int, interval: float, seconds: float
) -> PingResult:
    """`clients` WebSockets to /ws/ping/, each a client of its own address,
    each sending a ping every `interval` seconds (or as soon as the last pong
    is back, if that is later) and waiting for its pong, for `seconds`. At
    `interval` 0.25 each stays within production's budget (5 a second, in
    bursts of 10): an honest client, never refused. Latency from send to pong."""
    connections = []
    try:
        for index in range(clients):
            connections.append(await ws_connect(address, "/ws/ping/", measurer_address(index)))
    except (OSError, TimeoutError, websockets.WebSocketException) as error:
        await ws_close_all(connections)
        raise RuntimeError(
            f"{clients - len(connections)} measuring clients could not connect"
        ) from error
    latencies: list[float] = []
    errors = 0
    message = "x" * 64
    frame = json.dumps({"ping": message})
    started = time.perf_counter()
    deadline = started + seconds

    async def client(index: int, connection) -> None:
        nonlocal errors
        # Spread over the interval, so that the pings do not arrive together.
        due = started + interval * index / clients
        while True:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            if time.perf_counter() >= deadline:
                return
            sent = time.perf_counter()
            try:
                await connection.send(frame)
                reply = json.loads(await asyncio.wait_for(connection.recv(), timeout=30))
            except (TimeoutError, websockets.ConnectionClosed):
                errors += 1
                return
            if reply != {"pong": message}:
                # A "slow down" would be the budget refusing an honest client.
                errors += 1
            else:
                latencies.append((time.perf_counter() - sent) * 1000)
            due = max(due + interval, time.perf_counter())

    await asyncio.gather(*(client(i, c) for i, c in enumerate(connections)))
    await ws_close_all(connections)
    return PingResult(
        pings=len(latencies),
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        max_ms=max(latencies, default=math.nan),
        errors=errors,
    )
