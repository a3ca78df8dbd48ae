"""Faults the stack survives, losing nothing: killed workers, restarts, outages.

Slow (each waits on real restarts and timeouts), so `make chaos` runs them.
Each leaves the stack as it found it: running and ready.
"""

import asyncio
import os
import subprocess
import threading
import time

import pytest
import requests
import websockets

from apps.core.draining import CLOSE_SERVICE_RESTART
from tests.stack import (
    Load,
    is_logged_in,
    log_in,
    log_out,
    logged_in_browser,
    ping,
    socket_on_each_replica,
    stack_database,
    user_create,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]


@pytest.fixture(autouse=True)
def stack_ready_after(stack):
    yield
    stack.wait_ready(timeout=90)


# --- Gunicorn -------------------------------------------------------------------

GUNICORN_WORKERS = """
import os
pids = [p for p in os.listdir("/proc") if p.isdigit()]
def parent(p):
    return open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1]
def command(p):
    return open(f"/proc/{p}/cmdline", "rb").read()
master = [p for p in pids if b"gunicorn" in command(p) and parent(p) == "%s"]
print(" ".join(p for p in pids if parent(p) in master))
"""


def gunicorn_workers(stack, web) -> list[str]:
    # Gunicorn's master is the child of run-draining.sh (PID 1); its workers, its children.
    return stack.run_python(web, GUNICORN_WORKERS % "1").split()


def test_killed_gunicorn_worker_is_replaced_under_load(stack):
    web = stack.containers("web")[0]
    workers = gunicorn_workers(stack, web)
    assert workers

    with Load(stack) as load:
        time.sleep(2)
        stack.run_python(web, f"import os, signal; os.kill({workers[0]}, signal.SIGKILL)")
        killed_at = time.monotonic()
        time.sleep(5)

    # Only requests that were inside the killed worker may have failed.
    assert len(load.failures()) <= load.threads
    assert load.failures(since=killed_at + 1) == []
    assert len([r for r in load.results if r[0] > killed_at + 1]) > 10
    replaced = gunicorn_workers(stack, web)
    assert len(replaced) == len(workers) and workers[0] not in replaced


# --- Zero-downtime restarts -----------------------------------------------------


def rolling_restart(stack, service: str) -> subprocess.CompletedProcess:
    """docs/operating.md's procedure, deploy/rolling-restart.sh, on this stack."""
    return subprocess.run(
        ["deploy/rolling-restart.sh", service],
        env={**os.environ, "COMPOSE_PROJECT_NAME": stack.project},
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_rolling_restart_of_web_fails_no_request(stack):
    before = {c.id for c in stack.containers("web")}
    nginx = stack.containers("nginx")[0]
    started = int(time.time())
    with Load(stack, posts=True) as load:
        result = rolling_restart(stack, "web")
    assert result.returncode == 0, result.stdout + result.stderr
    after = {c.id for c in stack.containers("web")}
    assert after and not before & after, "the old containers are still there"
    assert len(load.results) > 50
    # GETs and POSTs alike: a POST is retried by no one, so one dropped on
    # the way to a stopping replica would be a failure here.
    assert load.failures() == []
    assert load.posted > 10
    # The client's own retries: a GET sent on a connection nginx was closing.
    # nginx closes its idle connections only when it reloads (its follower
    # of web's replicas reloads it as they come and go), at most once each:
    # no retry that a reload does not explain.
    log = nginx.logs(since=started).decode()
    reloads = log.count("nginx reloaded")
    assert reloads >= 1, "the follower never moved nginx to the new replicas"
    assert len(load.retries) <= reloads * load.threads, (load.retries, reloads)
    # nginx left each old replica while it drained, before its Gunicorn closed
    # the connections nginx keeps open: not one request failed on the way to
    # it, nor was retried by nginx on another.
    upstream_errors = [
        line for line in log.splitlines() if "[error]" in line and "upstream" in line
    ]
    assert upstream_errors == []


class ReconnectingClient:
    """A /ws/ping/ client that reconnects when closed, as a page's script
    does, and notes every close code it was given."""

    def __init__(self, stack):
        self.stack = stack
        self.close_codes: list[int | None] = []
        self.connection = None
        self.connected = asyncio.Event()

    async def run(self):
        while True:
            try:
                async with self.stack.ws_connect() as connection:
                    self.connection = connection
                    self.connected.set()
                    await connection.wait_closed()
                    self.close_codes.append(connection.close_code)
            except (OSError, websockets.WebSocketException):
                pass  # refused: the server is draining or gone; try again
            self.connected.clear()
            await asyncio.sleep(0.5)


async def test_rolling_restart_of_asgi_moves_websockets_to_the_new_containers(stack):
    clients = [ReconnectingClient(stack) for _ in range(4)]
    tasks = [asyncio.create_task(client.run()) for client in clients]
    try:
        await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in clients)), 10)
        before = {c.id for c in stack.containers("asgi")}

        result = await asyncio.to_thread(rolling_restart, stack, "asgi")
        assert result.returncode == 0, result.stdout + result.stderr
        assert not before & {c.id for c in stack.containers("asgi")}

        # Each client was told to reconnect, and did, to a server that works.
        await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in clients)), 20)
        for client in clients:
            assert CLOSE_SERVICE_RESTART in client.close_codes
            assert await ping(client.connection, "after") == {"pong": "after"}
    finally:
        for task in tasks:
            task.cancel()


# --- Graceful stop ---------------------------------------------------------------


def test_stop_lets_slow_requests_finish_and_fails_readiness_while_draining(stack):
    browser = logged_in_browser(stack)
    session_key = browser.cookies["sessionid"]

    # Logging out deletes the session row; hold that row's lock, and the
    # logout waits on PostgreSQL: a slow request, with no test code in the app.
    # DATABASE_URL is the stack's own database (the unit tests use a copy).
    with stack_database() as lock:
        lock.execute(
            "SELECT 1 FROM django_session WHERE session_key = %s FOR UPDATE", [session_key]
        )
        slow = {}
        request = threading.Thread(
            target=lambda: slow.update(response=log_out(stack, browser, timeout=60))
        )
        request.start()
        # Each state awaited, not slept for: the logout waiting on the lock...
        # (polled in autocommit: PostgreSQL shows a transaction the same
        # pg_stat_activity until it ends, so a first look taken before the
        # logout's query arrived would be all a transaction ever saw)
        with stack_database(autocommit=True) as watcher:
            wait_until(
                lambda: (
                    watcher.execute(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE wait_event_type = 'Lock' AND query ILIKE '%django_session%'"
                    ).fetchone()[0]
                    == 1
                ),
                timeout=30,
                interval=0.1,
                what="the logout waiting on the session row's lock",
            )

        web = stack.containers("web")[0]
        address = stack.address_of(web)
        stop_asked = time.time()
        stopping = threading.Thread(target=lambda: web.stop(timeout=30))
        stopping.start()
        # ...readiness failing while it drains...
        readiness = {}

        def draining() -> bool:
            readiness["answer"] = requests.get(f"http://{address}:8000/readyz", timeout=5)
            return readiness["answer"].status_code == 503

        wait_until(draining, timeout=15, interval=0.1, what="/readyz answering 503")
        # ...and, the drain over, Gunicorn given its SIGTERM with the request
        # still in hand: what its graceful timeout is for.
        wait_until(
            lambda: b"Handling signal: term" in web.logs(since=int(stop_asked)),
            timeout=30,
            interval=0.1,
            what="Gunicorn's SIGTERM",
        )
        assert "response" not in slow, "the request ended before Gunicorn was told to stop"
        lock.rollback()  # the slow request may go on

    request.join(timeout=30)
    stopping.join(timeout=40)
    assert readiness["answer"].json() == {"status": "draining"}
    assert slow["response"].status_code == 200
    assert "Logged out" in slow["response"].text

    web.start()
    stack.wait_ready(timeout=60)
    assert not is_logged_in(stack, browser)


# --- Redis ------------------------------------------------------------------------


async def ping_on_each_asgi_replica(stack) -> None:
    """A round trip through the channel layer on every asgi replica, each on
    the first socket nginx sends it: none may refuse one first."""
    _, sockets = await socket_on_each_replica(stack)
    for number, connection in enumerate(sockets):
        assert await ping(connection, number) == {"pong": number}
        await connection.close()


def test_redis_outage_loses_nothing_and_heals_by_itself(stack):
    member = logged_in_browser(stack)
    newcomer_account = user_create(stack)
    servers = {c.id for s in ("web", "asgi") for c in stack.containers(s)}
    # Each Daphne process now holds a connection to Redis, which the outage
    # will break; it must replace it by itself when Redis is back.
    asyncio.run(ping_on_each_asgi_replica(stack))

    redis = stack.containers("redis")[0]
    redis.stop(timeout=10)
    outage_began = time.monotonic()
    try:
        # Readiness is checked at most once a second (apps/core/views.py):
        # the first answers may still be a check's from before the outage.
        unavailable = {
            "status": "unavailable",
            "checks": {
                "database": "ok",
                "cache": "failed",
                "channel_layer": "failed",
            },
        }
        web = f"http://{stack.address_of(stack.containers('web')[0])}:8000"
        wait_until(
            lambda: requests.get(f"{web}/readyz", timeout=5).json() == unavailable,
            timeout=10,
            interval=0.2,
            what="readiness naming Redis's two uses, to whoever asks web directly",
        )
        # The public site says only that it is not ready: once each web
        # process it reaches has checked again (at most a second apart, and
        # the last answer meanwhile).
        wait_until(
            lambda: stack.browser().get(stack.url("/readyz")).json() == {"status": "unavailable"},
            timeout=10,
            interval=0.2,
            what="readiness through nginx saying unavailable, and nothing more",
        )
        # Nobody is logged out, and newcomers can log in (to PostgreSQL alone).
        newcomer = stack.browser()
        log_in(stack, newcomer, *newcomer_account)
        while time.monotonic() - outage_began < 30:
            assert is_logged_in(stack, member)
            assert is_logged_in(stack, newcomer)
            time.sleep(2)
    finally:
        redis.start()

    stack.wait_ready(timeout=60)
    # Nothing was lost, and nothing had to be restarted.
    assert is_logged_in(stack, member)
    assert is_logged_in(stack, newcomer)
    # Once it is ready, every Daphne process serves its next socket: none
    # answers a handshake with a 500 on the connection Redis dropped.
    asyncio.run(ping_on_each_asgi_replica(stack))
    assert servers == {c.id for s in ("web", "asgi") for c in stack.containers(s)}
    assert all(c.attrs["RestartCount"] == 0 for s in ("web", "asgi") for c in stack.containers(s))


# --- PostgreSQL ---------------------------------------------------------------------


def test_postgres_restart_fails_requests_briefly_and_loses_no_row(stack):
    browser = logged_in_browser(stack)
    web_before = {c.id for c in stack.containers("web")}

    # The admin's index reads the user from PostgreSQL on every request.
    with Load(stack, path="/admin/", browser=lambda: copy_of(browser)) as load:
        time.sleep(1)
        stack.containers("db")[0].restart(timeout=30)
        restarted_at = time.monotonic()
        wait_until(
            lambda: browser.get(stack.url("/readyz")).status_code == 200,
            timeout=60,
            what="recovery",
        )
        recovered_at = time.monotonic()
        time.sleep(2)

    # Failures only while PostgreSQL was down, each a 503 "try again", never a 500.
    assert recovered_at - restarted_at < 30
    assert all(outcome == 503 for _, outcome in load.failures()), load.failures()
    assert load.failures(since=recovered_at) == []
    assert len(load.results) > 20
    # The committed session row survived: still logged in.
    assert is_logged_in(stack, browser)
    assert web_before == {c.id for c in stack.containers("web")}


def copy_of(browser: requests.Session) -> requests.Session:
    """Another connection for the same visitor: the same cookies and headers."""
    twin = requests.Session()
    twin.headers.update(browser.headers)
    twin.cookies.update(browser.cookies)
    return twin
