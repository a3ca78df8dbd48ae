"""The whole stack through nginx: nginx, Gunicorn, Daphne, Redis, PostgreSQL,
with what every fork has (Django's admin, the probes, /ws/ping/)."""

import asyncio
import json
import math
import os
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests
from channels.layers import get_channel_layer

from tests.stack import (
    console_errors,
    is_logged_in,
    logged_in_browser,
    ping,
    socket_on_each_replica,
    static_urls,
)

pytestmark = pytest.mark.e2e


def test_pages_are_served_by_gunicorn_through_nginx(stack):
    started = time.time()
    response = stack.browser().get(stack.url("/admin/login/"))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Server"] == "nginx"  # no version
    assert 'name="csrfmiddlewaretoken"' in response.text
    # This request's own line (its id), not any GET of the page that second.
    [access] = stack.log_records(
        "web",
        since=started,
        logger="gunicorn.access",
        request_id=response.headers["X-Request-ID"],
    )
    assert (access["path"], access["status"]) == ("/admin/login/", 200)


def test_login_survives_a_restart_of_web(stack):
    browser = logged_in_browser(stack)
    stack.restart("web")
    assert is_logged_in(stack, browser)


def test_static_files_come_from_nginx_hashed_cached_and_gzipped(stack):
    page = stack.browser().get(stack.url("/admin/login/")).text
    urls = static_urls(page)
    assert urls
    for url in urls:
        assert re.search(r"\.[0-9a-f]{12}\.(svg|css|js)$", url), url
        response = stack.browser().get(stack.url(url), headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200
        assert response.headers["Content-Encoding"] == "gzip"
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert response.headers["Server"] == "nginx"


def test_readyz_through_nginx_says_ready_and_no_more(stack):
    response = stack.browser().get(stack.url("/readyz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_asked_directly_names_each_check(stack):
    # As Docker's and Kubernetes' probes and nginx's follower ask it.
    address = stack.address_of(stack.containers("web")[0])
    response = requests.get(f"http://{address}:8000/readyz", timeout=5)
    assert response.status_code == 200
    assert response.json()["checks"] == {
        "database": "ok",
        "cache": "ok",
        "channel_layer": "ok",
    }


def test_readyz_flood_through_nginx_costs_the_backends_a_check_a_second(stack):
    # Each readiness check publishes one message on the channel layer
    # (apps/core/checks.py): Redis counts the PUBLISHes. Web's processes may
    # each check once a second (apps/core/views.py), probes included.
    flood = 200  # requests
    # Redis's admin: the app's user may not read INFO (docker-compose.yml).
    redis_server = redis.Redis(
        host="redis",
        username="admin",
        password=Path(os.environ["REDIS_ADMIN_PASSWORD_FILE"]).read_text(),
        socket_timeout=5,
    )

    def publishes() -> int:
        return redis_server.info("commandstats").get("cmdstat_publish", {}).get("calls", 0)

    def readyz(_) -> int:
        answer = requests.get(stack.url("/readyz"), headers={"Host": stack.host}, timeout=10)
        return answer.status_code

    processes = sum(
        1
        for web in stack.containers("web")
        for process in web.top()["Processes"]
        if "gunicorn" in process[-1]
    )
    before, started = publishes(), time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(readyz, range(flood)))
    checks, seconds = publishes() - before, time.monotonic() - started

    assert answers == [200] * flood
    # At most one check per process per second begun, plus one already
    # under way before the count began. (Unthrottled: one per request.)
    most = processes * (math.ceil(seconds) + 2)
    assert most < flood, f"too slow to tell: {seconds:.1f} s for {processes} processes"
    assert checks <= most, f"{checks} checks for {flood} requests in {seconds:.1f} s"


async def test_websocket_ping_goes_through_nginx_daphne_and_redis(stack):
    async with stack.ws_connect() as connection:
        assert await ping(connection, {"any": ["json"]}) == {"pong": {"any": ["json"]}}


async def test_channel_layer_reaches_sockets_on_every_daphne_process(stack):
    """A message published to Redis by another process (this test) reaches
    sockets on each Daphne replica: the channel layer joins them all."""
    replicas, sockets = await socket_on_each_replica(stack)
    assert len(replicas) == 2, "make test runs asgi with two replicas"

    layer = get_channel_layer()
    try:
        for replica, connection in zip(replicas, sockets, strict=True):
            hostname = replica.attrs["Config"]["Hostname"]
            text = uuid.uuid4().hex
            # Every socket is in its server's group, server_<host name>
            # (apps/core/draining.py).
            await layer.group_send(f"server_{hostname}", {"type": "ping.echo", "ping": text})
            reply = json.loads(await asyncio.wait_for(connection.recv(), timeout=5))
            assert reply == {"pong": text}
    finally:
        for connection in sockets:
            await connection.close()


def test_admin_in_a_real_browser_has_no_console_errors(stack, chromium):
    # A CSP violation, a missing file or a script error would be logged.
    page = chromium.new_page()
    errors = console_errors(page)
    page.goto(f"http://{stack.address}/admin/login/")
    assert page.title().startswith("Log in")
    assert errors == []
    page.close()
