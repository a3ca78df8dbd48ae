"""project/sentry.py: an error in a view, in a task's last attempt or in a
WebSocket consumer reaches Sentry with its request id and release, and no
personal data. The event goes to a transport of the test's own, in this
process: no network, no Sentry."""

import importlib
import json
import logging
from typing import ClassVar

import pytest
import sentry_sdk
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.http import HttpResponse
from django.tasks import task
from django.urls import path
from sentry_sdk.transport import Transport

from apps.core.consumers import JsonConsumer
from apps.core.request_id import request_context
from apps.core.tasks.worker import Worker
from project.sentry import sentry_init

DSN = "https://public@sentry.invalid/1"
REQUEST_ID = "0123456789abcdef"


def fails(request):
    raise RuntimeError("the view failed")


def works(request):
    return HttpResponse("ok")


class FailingConsumer(JsonConsumer):
    async def receive_json(self, content):
        raise RuntimeError("the consumer failed")


urlpatterns = [path("fails/", fails), path("works/", works)]
# arg-type ignored as in apps/core/routing.py, which says why.
websocket_urlpatterns = [path("ws/fails/", FailingConsumer.as_asgi())]  # type: ignore[arg-type]


@task
def task_fails(*, email: str) -> None:
    raise RuntimeError("the task failed")


class LocalTransport(Transport):
    """Keeps what sentry-sdk would send."""

    sent: ClassVar[list] = []

    def capture_envelope(self, envelope):
        LocalTransport.sent.append(envelope)


@pytest.fixture
def sentry_events():
    """Sentry on, as base.py turns it on, sending to LocalTransport; off after."""
    LocalTransport.sent = []
    sentry_init(
        dsn=DSN,
        release="1.2.3",
        environment="test",
        transport=LocalTransport,
    )
    try:
        yield lambda: [
            event for envelope in LocalTransport.sent if (event := envelope.get_event()) is not None
        ]
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)


@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_an_error_is_reported_with_its_request_id_release_and_no_personal_data(
    client, django_user_model, sentry_events
):
    user = django_user_model.objects.create_user("alice@example.com", "a-password")
    client.force_login(user)
    client.raise_request_exception = False
    response = client.get(
        "/fails/",
        HTTP_X_REQUEST_ID="0123456789abcdef",
        HTTP_AUTHORIZATION="Bearer a-token",
        REMOTE_ADDR="192.0.2.9",
    )
    assert response.status_code == 500

    [event] = sentry_events()
    assert event["tags"]["request_id"] == "0123456789abcdef"
    assert event["release"] == "1.2.3"
    assert event["environment"] == "test"
    assert event["exception"]["values"][-1]["value"] == "the view failed"
    sent = json.dumps(event, default=str)
    session_key = client.cookies["sessionid"].value
    for personal in (session_key, "sessionid", "alice", "a-token", "192.0.2.9"):
        assert personal not in sent, personal
    assert "cookies" not in event.get("request", {})
    assert "user" not in event


@pytest.mark.urls(__name__)
def test_a_request_that_works_sends_nothing(client, sentry_events):
    assert client.get("/works/").status_code == 200
    assert sentry_events() == []


# --- Tasks (apps/core/tasks/worker.py) ----------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_task_failing_its_last_attempt_is_reported_once_with_its_ids(settings, sentry_events):
    settings.SENTRY_DSN = DSN
    settings.TASK_MAX_ATTEMPTS = 2
    settings.TASK_RETRY_BASE_SECONDS = 0
    # Enqueued while a request is served, as a view would.
    token = request_context.set({"request_id": REQUEST_ID, "client": "192.0.2.9"})
    try:
        enqueued = task_fails.enqueue(email="alice@example.com")
    finally:
        request_context.reset(token)
    worker = Worker(worker_id="sentry-test")

    worker.run_task(worker.claim())
    assert sentry_events() == []  # an attempt that will be retried is no error yet

    worker.run_task(worker.claim())
    [event] = sentry_events()
    assert event["tags"] == {
        "request_id": REQUEST_ID,
        "task": "task_fails",
        "task_id": str(enqueued.id),
    }
    assert event["release"] == "1.2.3"
    assert event["exception"]["values"][-1]["value"] == "the task failed"
    sent = json.dumps(event, default=str)
    for personal in ("alice", "192.0.2.9"):
        assert personal not in sent, personal
    assert "user" not in event


# --- WebSocket consumers (project/asgi.py) ------------------------------------------


@pytest.fixture
def asgi_application(settings):
    """project/asgi.py's application as Daphne loads it with SENTRY_DSN set,
    routing /ws/fails/ (this module's websocket_urlpatterns); as it was after."""
    import project.asgi

    dsn, urlconf = settings.SENTRY_DSN, settings.ROOT_URLCONF
    settings.METRICS_PORT = 0  # the module would serve /metrics
    settings.SENTRY_DSN = DSN
    settings.ROOT_URLCONF = __name__
    try:
        yield importlib.reload(project.asgi).application
    finally:
        settings.SENTRY_DSN, settings.ROOT_URLCONF = dsn, urlconf
        importlib.reload(project.asgi)


@pytest.fixture
async def thread_connections_closed():
    """The session middleware reads PostgreSQL from asgiref's one thread for
    sync code: close its connection after the test, as a request's end would,
    or the test database cannot be dropped at the end of the run."""
    yield
    await sync_to_async(connections.close_all)()


@pytest.mark.django_db(transaction=True)
async def test_a_consumer_error_is_reported_with_the_sockets_request_id(
    asgi_application, sentry_events, thread_connections_closed
):
    client = WebsocketCommunicator(
        asgi_application,
        "/ws/fails/",
        headers=[
            (b"origin", b"http://localhost:8000"),
            (b"x-request-id", REQUEST_ID.encode()),
            (b"cookie", b"sessionid=a-session-key"),
            (b"x-forwarded-for", b"192.0.2.9"),
        ],
    )
    client.scope["client"] = ["192.0.2.9", 40000]  # as Daphne gets it from nginx
    accepted, _ = await client.connect()
    assert accepted
    await client.send_to(text_data=json.dumps({"say": "a private message"}))
    with pytest.raises(RuntimeError, match="the consumer failed") as raised:
        await client.receive_from()

    [event] = sentry_events()
    assert event["tags"]["request_id"] == REQUEST_ID
    assert event["exception"]["values"][-1]["value"] == "the consumer failed"
    sent = json.dumps(event, default=str)
    for personal in ("a-session-key", "sessionid", "192.0.2.9", "a private message"):
        assert personal not in sent, personal
    assert "user" not in event

    # Daphne then logs the exception, from outside the connection (as here,
    # outside the application's task): no second event, without the id.
    logging.getLogger("daphne.server").error(
        "Exception inside application: %s", raised.value, exc_info=raised.value
    )
    assert len(sentry_events()) == 1
