"""Faults the stack survives, losing nothing: killed workers, restarts, outages.

Slow (each waits on real restarts and timeouts), so `make chaos` runs them.
Each leaves the stack as it found it: running and ready.
"""

import asyncio
import contextlib
import json
import os
import re
import subprocess
import threading
import time
import uuid

import psycopg
import pytest
import requests
import websockets
from playwright.sync_api import expect

from apps.health.draining import CLOSE_SERVICE_RESTART

from .conftest import Load, csrf_form, page_url, visit_count

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]


def wait_until(predicate, *, timeout: float, interval: float = 0.5, what: str = "it"):
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if predicate():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout} s")
        time.sleep(interval)


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
    """The README's procedure, deploy/rolling-restart.sh, on this stack."""
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
    with Load(stack) as load:
        result = rolling_restart(stack, "web")
    assert result.returncode == 0, result.stdout + result.stderr
    after = {c.id for c in stack.containers("web")}
    assert after and not before & after, "the old containers are still there"
    assert len(load.results) > 50
    assert load.failures() == []
    # nginx left each old replica while it drained, before its Gunicorn closed
    # the connections nginx keeps open: not one request failed on the way to
    # it. (nginx retries a failed GET on another replica, so the load above
    # would not show it; a POST it cannot retry, and would answer 502.)
    upstream_errors = [
        line
        for line in nginx.logs(since=started).decode().splitlines()
        if "[error]" in line and "upstream" in line
    ]
    assert upstream_errors == []


class ReconnectingClient:
    """A chat client that reconnects when closed, as the page's script does,
    and notes every close code it was given."""

    def __init__(self, stack, path: str):
        self.stack, self.path = stack, path
        self.close_codes: list[int | None] = []
        self.received: list[str] = []
        self.connection = None
        self.connected = asyncio.Event()

    async def run(self):
        while True:
            try:
                async with websockets.connect(
                    self.stack.ws_url(self.path), **self.stack.ws_connect_args()
                ) as connection:
                    self.connection = connection
                    self.connected.set()
                    async for frame in connection:
                        self.received.append(json.loads(frame).get("message"))
            except websockets.ConnectionClosed as closed:
                self.close_codes.append(closed.rcvd.code if closed.rcvd else None)
            except (OSError, websockets.WebSocketException):
                pass  # refused: the server is draining or gone; try again
            self.connected.clear()
            await asyncio.sleep(0.5)


async def test_rolling_restart_of_asgi_moves_websockets_to_the_new_containers(stack):
    path = f"/ws/chat/chaos-{uuid.uuid4().hex[:12]}/"
    clients = [ReconnectingClient(stack, path) for _ in range(4)]
    tasks = [asyncio.create_task(client.run()) for client in clients]
    try:
        await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in clients)), 10)
        before = {c.id for c in stack.containers("asgi")}

        result = await asyncio.to_thread(rolling_restart, stack, "asgi")
        assert result.returncode == 0, result.stdout + result.stderr
        assert not before & {c.id for c in stack.containers("asgi")}

        # Each client was told to reconnect, and did.
        await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in clients)), 20)
        for client in clients:
            assert CLOSE_SERVICE_RESTART in client.close_codes
        text = f"after the restart {uuid.uuid4().hex}"
        await clients[0].connection.send(json.dumps({"message": text}))
        for client in clients:
            await asyncio.wait_for(_until(lambda c=client: text in c.received), 5)
    finally:
        for task in tasks:
            task.cancel()


async def _until(predicate):
    while not predicate():
        await asyncio.sleep(0.05)


# --- Graceful stop ---------------------------------------------------------------


def test_stop_lets_slow_requests_finish_and_fails_readiness_while_draining(stack):
    browser = stack.browser()
    count = visit_count(browser.get(stack.url("/")))
    session_key = browser.cookies["sessionid"]

    # The next visit must save the session row; hold that row's lock, and the
    # visit waits on PostgreSQL: a slow request, with no test code in the app.
    # DATABASE_URL is the stack's own database (the unit tests use a copy).
    with psycopg.connect(os.environ["DATABASE_URL"]) as lock:
        lock.execute(
            "SELECT 1 FROM django_session WHERE session_key = %s FOR UPDATE", [session_key]
        )
        slow = {}
        request = threading.Thread(
            target=lambda: slow.update(response=browser.get(stack.url("/"), timeout=60))
        )
        request.start()
        time.sleep(1)

        web = stack.containers("web")[0]
        stopping = threading.Thread(target=lambda: web.stop(timeout=30))
        stopping.start()
        time.sleep(1.5)
        readiness = requests.get(f"http://{stack.address_of(web)}:8000/readyz", timeout=5)
        time.sleep(5)  # past the drain: Gunicorn now has the SIGTERM
        lock.rollback()  # the slow request may go on

    request.join(timeout=30)
    stopping.join(timeout=40)
    assert readiness.status_code == 503
    assert readiness.json() == {"status": "draining"}
    assert visit_count(slow["response"]) == count + 1

    web.start()
    stack.wait_ready(timeout=60)
    assert visit_count(browser.get(stack.url("/"))) == count + 2


# --- Redis ------------------------------------------------------------------------


def logged_in_browser(stack) -> requests.Session:
    username, password = f"chaos-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    web = stack.containers("web")[0]
    result = web.exec_run(
        ["python", "manage.py", "createsuperuser", "--noinput", "--email", "chaos@example.com"],
        environment={"DJANGO_SUPERUSER_USERNAME": username, "DJANGO_SUPERUSER_PASSWORD": password},
    )
    assert result.exit_code == 0, result.output.decode()
    browser = stack.browser()
    browser.post(
        stack.url("/admin/login/?next=/admin/"),
        data=csrf_form(stack, browser) | {"username": username, "password": password},
        headers={"Origin": stack.origin},
    )
    assert is_logged_in(stack, browser)
    return browser


def is_logged_in(stack, browser) -> bool:
    return browser.get(stack.url("/admin/"), allow_redirects=False).status_code == 200


async def chat_round_trip(stack) -> None:
    path = f"/ws/chat/chaos-{uuid.uuid4().hex[:12]}/"
    args = stack.ws_connect_args()
    async with (
        websockets.connect(stack.ws_url(path), **args) as sender,
        websockets.connect(stack.ws_url(path), **args) as receiver,
    ):
        await sender.send(json.dumps({"message": "across processes"}))
        reply = json.loads(await asyncio.wait_for(receiver.recv(), 5))
        assert reply == {"message": "across processes"}


def test_redis_outage_loses_nothing_and_heals_by_itself(stack):
    member = logged_in_browser(stack)
    member_count = visit_count(member.get(stack.url("/")))
    servers = {c.id for s in ("web", "asgi") for c in stack.containers(s)}

    redis = stack.containers("redis")[0]
    redis.stop(timeout=10)
    outage_began = time.monotonic()
    try:
        readiness = stack.browser().get(stack.url("/readyz"))
        assert readiness.status_code == 503
        assert readiness.json()["checks"] == {
            "database": "ok",
            "cache": "failed",
            "sessions": "failed",
            "channel_layer": "failed",
        }
        newcomer = stack.browser()
        newcomer_counts = []
        while time.monotonic() - outage_began < 30:
            assert visit_count(member.get(stack.url("/"))) == member_count + 1
            member_count += 1
            assert is_logged_in(stack, member)
            newcomer_counts.append(visit_count(newcomer.get(stack.url("/"))))
            time.sleep(2)
        assert newcomer_counts == list(range(1, len(newcomer_counts) + 1))
    finally:
        redis.start()

    stack.wait_ready(timeout=60)
    # Nothing was lost or rolled back, and nothing had to be restarted.
    assert is_logged_in(stack, member)
    assert visit_count(member.get(stack.url("/"))) == member_count + 1
    assert visit_count(newcomer.get(stack.url("/"))) == newcomer_counts[-1] + 1
    # Chat clients reconnect by themselves, as the page's script does.
    wait_until(lambda: asyncio.run(chat_round_trip(stack)) is None, timeout=30, what="chat")
    assert servers == {c.id for s in ("web", "asgi") for c in stack.containers(s)}
    assert all(c.attrs["RestartCount"] == 0 for s in ("web", "asgi") for c in stack.containers(s))


# --- PostgreSQL ---------------------------------------------------------------------


def test_postgres_restart_fails_requests_briefly_and_loses_no_row(stack):
    browser = stack.browser()
    count = visit_count(browser.get(stack.url("/")))
    web_before = {c.id for c in stack.containers("web")}

    with Load(stack, path="/") as load:
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
    # The committed session row survived: the count goes on.
    assert visit_count(browser.get(stack.url("/"))) == count + 1
    assert web_before == {c.id for c in stack.containers("web")}


# --- Daphne ---------------------------------------------------------------------

# Records every status the chat box shows, so the retries can be read back.
RECORD_STATUSES = """() => {
    const status = document.getElementById("chat-status");
    window.statuses = [];
    new MutationObserver(() => window.statuses.push(status.textContent))
        .observe(status, {childList: true, characterData: true, subtree: true});
}"""


def test_page_chat_reconnects_with_back_off_after_daphne_restarts(stack, chromium):
    page = chromium.new_page()
    page.goto(page_url(stack, f"chaos-{uuid.uuid4().hex[:12]}"))
    expect(page.locator("#chat-status")).to_have_text("connected")
    page.evaluate(RECORD_STATUSES)

    # Both replicas at once: for a while there is no Daphne to reconnect to.
    restarts = [
        threading.Thread(target=c.restart, kwargs={"timeout": 30}) for c in stack.containers("asgi")
    ]
    for restart in restarts:
        restart.start()
    for restart in restarts:
        restart.join()
    expect(page.locator("#chat-status")).to_have_text("connected", timeout=60_000)

    delays = [
        float(match[1])
        for status in page.evaluate("() => window.statuses")
        if (match := re.match(r"disconnected, retrying in ([\d.]+) s", status))
    ]
    assert len(delays) >= 3, page.evaluate("() => window.statuses")
    assert delays[-1] > delays[0] * 2, delays  # backing off, not hammering
    page.fill("#chat-message", "back again")
    page.press("#chat-message", "Enter")
    expect(page.locator("#chat-log")).to_contain_text("back again")
    page.close()
