"""apps/core/request_id.py and RequestIdMiddleware: the request's fields in
every record logged while it is served, and Daphne's access log. The whole
path, nginx included, is in tests/e2e/test_logs.py."""

import logging

import pytest
from django.core.signals import request_finished
from django.http import HttpResponse
from django.test import RequestFactory

from apps.core.middleware import RequestIdMiddleware
from apps.core.request_id import AsgiRequestContext, RequestContextFilter, request_context


@pytest.fixture(autouse=True)
def no_request_left_over():
    """Each test starts, and leaves, with no request being served."""
    request_context.set(None)
    yield
    request_context.set(None)


def record(**extra) -> logging.LogRecord:
    made = logging.LogRecord("app", logging.INFO, __file__, 1, "hello", None, None)
    made.__dict__.update(extra)
    return made


def test_the_filter_adds_the_request_being_served():
    token = request_context.set(
        {"request_id": "abc", "method": "GET", "path": "/x/", "client": "192.0.2.1"}
    )
    try:
        plain, access = record(), record(path="/own/", status=200)
        assert RequestContextFilter().filter(plain) and RequestContextFilter().filter(access)
    finally:
        request_context.reset(token)
    assert (plain.request_id, plain.method, plain.path, plain.client) == (
        "abc",
        "GET",
        "/x/",
        "192.0.2.1",
    )
    # An access log's own fields are kept.
    assert (access.path, access.status, access.request_id) == ("/own/", 200, "abc")


def test_the_filter_adds_nothing_outside_a_request():
    line = record()
    RequestContextFilter().filter(line)
    assert not hasattr(line, "request_id")


def test_django_s_status_code_is_the_schema_s_status():
    line = record(status_code=404)
    RequestContextFilter().filter(line)
    assert line.status == 404


@pytest.mark.django_db  # request_finished's other receivers close database connections
def test_the_middleware_sets_the_request_s_fields_while_it_is_served():
    seen = []

    def view(request):
        seen.append(request_context.get())
        return HttpResponse()

    request = RequestFactory().get("/page/", HTTP_X_REQUEST_ID="0123abcd", REMOTE_ADDR="192.0.2.9")
    RequestIdMiddleware(view)(request)
    fields = {"request_id": "0123abcd", "method": "GET", "path": "/page/", "client": "192.0.2.9"}
    assert seen == [fields]
    # Still there for Django's own line about the answer, written after the
    # middleware; cleared once the response has gone.
    assert request_context.get() == fields
    request_finished.send(sender=None)
    assert request_context.get() is None


def test_the_middleware_ignores_an_id_of_another_shape():
    seen = []

    def view(request):
        seen.append(request_context.get()["request_id"])
        return HttpResponse()

    for odd in ("a b", "x" * 129, ""):
        RequestIdMiddleware(view)(RequestFactory().get("/", HTTP_X_REQUEST_ID=odd))
    RequestIdMiddleware(view)(RequestFactory().get("/"))
    assert seen == [None] * 4


WEBSOCKET = {
    "type": "websocket",
    "path": "/ws/ping/",
    "headers": [(b"host", b"localhost"), (b"x-request-id", b"0123abcd")],
    "client": ["192.0.2.9", 50000],
}


async def test_a_websocket_s_lines_carry_its_id_and_daphne_s_access_log_is_written(caplog):
    consumer = logging.getLogger("apps.core.consumers")

    async def app(scope, receive, send):
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        consumer.warning("inside")
        await send({"type": "websocket.close", "code": 4009})

    async def receive():
        return {"type": "websocket.connect"}

    async def send(message):
        pass

    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(RequestContextFilter())
    await AsgiRequestContext(app)(WEBSOCKET, receive, send)
    lines = [(r.name, r.getMessage(), r.request_id, r.client) for r in caplog.records]
    assert lines == [
        ("daphne.access", "WSCONNECT /ws/ping/", "0123abcd", "192.0.2.9"),
        ("apps.core.consumers", "inside", "0123abcd", "192.0.2.9"),
        ("daphne.access", "WSDISCONNECT /ws/ping/", "0123abcd", "192.0.2.9"),
    ]
    disconnect = caplog.records[-1]
    assert (disconnect.status, disconnect.close_code) == (101, 4009)
    assert disconnect.duration >= 0
    assert request_context.get() is None


async def test_a_refused_websocket_is_logged_as_such(caplog):
    async def app(scope, receive, send):
        await send({"type": "websocket.close", "code": 1000})

    async def send(message):
        pass

    caplog.set_level(logging.INFO)
    await AsgiRequestContext(app)(WEBSOCKET, None, send)
    [line] = caplog.records
    assert (line.getMessage(), line.status) == ("WSREJECT /ws/ping/", 403)


async def test_probes_are_answered_and_not_logged(caplog):
    answered = []

    async def app(scope, receive, send):
        answered.append(scope["path"])

    caplog.set_level(logging.INFO)
    for path in ("/healthz", "/readyz"):
        await AsgiRequestContext(app)({"type": "http", "path": path, "method": "GET"}, None, None)
    assert answered == ["/healthz", "/readyz"]
    assert caplog.records == []
