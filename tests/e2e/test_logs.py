"""One request, followed through the stack's logs by its id: nginx gives it,
returns it, passes it on, and nginx's, Gunicorn's, Django's and Daphne's
lines all carry it, as JSON in one schema (project/logs.py).

What nginx passes on and keeps from a proxy in front is in test_proxy.py;
the pieces in Python alone in apps/core/tests/test_request_id.py."""

import asyncio
import re
import time
import uuid

import pytest
import websockets

from apps.core.consumers import CLOSE_MESSAGE_TOO_BIG
from project.logs import FIELDS
from tests.stack import static_urls

pytestmark = pytest.mark.e2e

NGINX_ID = re.compile(r"[0-9a-f]{32}")  # $request_id


def loggers_are(*names):
    """until= for log_records: a record from each of these loggers is there."""
    return lambda records: set(names) <= {record["logger"] for record in records}


def test_one_request_s_id_is_in_every_log_line_about_it(stack):
    # A page Django does not have: besides the access logs, Django's own
    # django.request logs it ("Not Found").
    path = f"/no-such-page-{uuid.uuid4().hex}/"
    response = stack.browser().get(stack.url(path))
    assert response.status_code == 404
    request_id = response.headers["X-Request-ID"]
    assert NGINX_ID.fullmatch(request_id), request_id

    [nginx] = stack.log_records("nginx", request_id=request_id)
    web = stack.log_records(
        "web", request_id=request_id, until=loggers_are("gunicorn.access", "django.request")
    )
    by_logger = {record["logger"]: record for record in web}
    gunicorn, django = by_logger["gunicorn.access"], by_logger["django.request"]
    me = stack.own_address()
    for record in (nginx, gunicorn, django):
        assert set(FIELDS) <= record.keys(), record
        assert (record["method"], record["path"], record["client"]) == ("GET", path, me), record
    for access in (nginx, gunicorn):
        assert access["status"] == 404, access
        assert isinstance(access["duration"], float | int), access
    assert nginx["logger"] == "nginx.access"
    assert nginx["message"] == gunicorn["message"] == f"GET {path} HTTP/1.1"
    assert django["level"] == "WARNING"
    assert django["status"] == 404
    assert django["message"] == f"Not Found: {path}"


def test_every_answer_of_nginx_s_own_carries_a_request_id(stack):
    browser = stack.browser()
    login = browser.get(stack.url("/admin/login/"))
    answers = {
        "page": login,
        "static file": browser.get(stack.url(static_urls(login.text)[0])),
        "unknown host (421)": browser.get(stack.url("/"), headers={"Host": "evil.example"}),
        "body too big (413)": browser.post(stack.url("/"), data=b"x" * (1024 * 1024 + 1)),
    }
    ids = {what: answer.headers.get("X-Request-ID") for what, answer in answers.items()}
    assert all(NGINX_ID.fullmatch(str(value)) for value in ids.values()), ids
    assert len(set(ids.values())) == len(ids), ids


def test_a_client_s_own_request_id_is_replaced(stack):
    forged = f"forged-{uuid.uuid4().hex}"
    started = time.time()
    path = f"/no-such-page-{uuid.uuid4().hex}/"
    response = stack.browser().get(stack.url(path), headers={"X-Request-ID": forged})
    request_id = response.headers["X-Request-ID"]
    assert NGINX_ID.fullmatch(request_id), request_id
    # Gunicorn writes its line once the answer has gone: it is there, with
    # nginx's id, and Django's line before it; the forged id is nowhere.
    assert stack.log_records("web", since=started, request_id=request_id, path=path)
    assert stack.log_records("nginx", since=started, request_id=request_id)
    for service in ("nginx", "web"):
        assert forged not in stack.logs(service, since=started), service


async def test_a_websocket_s_lines_carry_its_handshake_s_id(stack):
    started = time.time()
    async with stack.ws_connect() as connection:
        request_id = connection.response.headers["X-Request-ID"]
        # A frame over the consumer's limit: it logs why it closes the socket.
        await connection.send("x" * (16 * 1024 + 1))
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(connection.recv(), timeout=10)
    assert connection.close_code == CLOSE_MESSAGE_TOO_BIG
    assert NGINX_ID.fullmatch(request_id), request_id

    asgi = stack.log_records(
        "asgi",
        since=started,
        request_id=request_id,
        until=lambda records: len(records) >= 3,
    )
    messages = [record["message"] for record in asgi]
    assert messages == [
        "WSCONNECT /ws/ping/",
        "Closing a WebSocket that sent a frame of 16385 characters (at most 16384)",
        "WSDISCONNECT /ws/ping/",
    ], asgi
    _, consumer, disconnect = asgi
    assert consumer["logger"] == "apps.core.consumers"
    assert disconnect["close_code"] == CLOSE_MESSAGE_TOO_BIG
    me = stack.own_address()
    for record in asgi:
        assert set(FIELDS) <= record.keys(), record
        assert (record["method"], record["path"], record["client"]) == ("GET", "/ws/ping/", me)
    # nginx logs the socket when it closes: the same id, status 101.
    [nginx] = stack.log_records("nginx", since=started, request_id=request_id)
    assert nginx["status"] == 101
