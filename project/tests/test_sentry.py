"""project/sentry.py: an error in a view reaches Sentry with its request id and
release, and no personal data. The event goes to a transport of the test's
own, in this process: no network, no Sentry."""

import json
from typing import ClassVar

import pytest
import sentry_sdk
from django.http import HttpResponse
from django.urls import path
from sentry_sdk.transport import Transport

from project.sentry import sentry_init


def fails(request):
    raise RuntimeError("the view failed")


def works(request):
    return HttpResponse("ok")


urlpatterns = [path("fails/", fails), path("works/", works)]


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
        dsn="https://public@sentry.invalid/1",
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
    user = django_user_model.objects.create_user("alice", "alice@example.com", "a-password")
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
