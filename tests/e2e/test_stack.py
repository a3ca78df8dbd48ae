"""The whole stack through nginx: nginx, Gunicorn, Daphne, Redis, PostgreSQL."""

import asyncio
import json
import re
import uuid

import pytest
import websockets

from .conftest import visit_count

pytestmark = pytest.mark.e2e


def static_urls(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/static/[^"]+)"', html)


def test_page_is_served_by_gunicorn_through_nginx(stack):
    response = stack.browser().get(stack.url("/"))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Server"] == "nginx"  # no version
    assert 'id="chat-form"' in response.text
    assert len(static_urls(response.text)) == 3  # icon, stylesheet, script


def test_counter_rises_and_survives_a_restart_of_web(stack):
    browser = stack.browser()
    assert [visit_count(browser.get(stack.url("/"))) for _ in range(2)] == [1, 2]

    stack.restart("web")

    assert visit_count(browser.get(stack.url("/"))) == 3


def test_static_files_come_from_nginx_hashed_cached_and_gzipped(stack):
    page = stack.browser().get(stack.url("/")).text
    for url in static_urls(page):
        assert re.search(r"\.[0-9a-f]{12}\.(svg|css|js)$", url), url
        response = stack.browser().get(stack.url(url), headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200
        assert response.headers["Content-Encoding"] == "gzip"
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert response.headers["Server"] == "nginx"


def test_admin_login_page_and_its_static_files(stack):
    browser = stack.browser()
    page = browser.get(stack.url("/admin/login/"))
    assert page.status_code == 200
    css = [url for url in static_urls(page.text) if url.endswith(".css")]
    assert css
    assert all(browser.get(stack.url(url)).status_code == 200 for url in css)


def test_readyz_through_nginx(stack):
    response = stack.browser().get(stack.url("/readyz"))
    assert response.status_code == 200
    assert response.json()["checks"] == {
        "database": "ok",
        "cache": "ok",
        "sessions": "ok",
        "channel_layer": "ok",
    }


async def test_chat_between_two_daphne_processes(stack):
    """Clients on different asgi replicas exchange messages: the group is in Redis."""
    replicas = stack.containers("asgi")
    assert len(replicas) == 2, "make test runs asgi with two replicas"
    path = f"/ws/chat/e2e-{uuid.uuid4().hex[:12]}/"

    def connects_per_replica() -> list[int]:
        return [r.logs().decode().count(f"WSCONNECT {path}") for r in replicas]

    # Connect until nginx has put a client on each replica, noting which is where.
    clients = {}  # replica index -> connection
    for _ in range(40):
        before = connects_per_replica()
        connection = await websockets.connect(stack.ws_url(path), **stack.ws_connect_args())
        for _ in range(50):  # Daphne writes its log line right after the handshake
            after = connects_per_replica()
            if after != before:
                break
            await asyncio.sleep(0.05)
        landed = next(i for i, (a, b) in enumerate(zip(after, before, strict=True)) if a > b)
        if landed in clients:
            await connection.close()
        else:
            clients[landed] = connection
        if len(clients) == 2:
            break
    assert len(clients) == 2, "nginx never spread connections over both replicas"

    try:
        for sender, receiver in ((clients[0], clients[1]), (clients[1], clients[0])):
            text = f"hello {uuid.uuid4().hex}"
            await sender.send(json.dumps({"message": text}))
            for connection in (receiver, sender):
                reply = json.loads(await asyncio.wait_for(connection.recv(), timeout=5))
                assert reply == {"message": text}
    finally:
        for connection in clients.values():
            await connection.close()
