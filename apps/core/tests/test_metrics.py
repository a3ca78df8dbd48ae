"""The platform's metrics (apps/core/metrics.py) as JsonConsumer and /readyz
count them, in this process's registry: what Daphne serves. Gunicorn's
workers, and the scrape itself, are tested through the stack
(tests/e2e/test_metrics.py)."""

import json

import pytest
from channels.layers import get_channel_layer
from prometheus_client import REGISTRY

from apps.core.draining import server_group
from apps.core.tests.test_consumers import connected

pytestmark = pytest.mark.django_db(transaction=True)


def ping_metrics(code: str) -> dict[str, float]:
    consumer = {"consumer": "PingConsumer"}
    names = {
        "connects": ("websocket_connects_total", consumer),
        "open": ("websocket_connections_open", consumer),
        "closes": ("websocket_closes_total", {**consumer, "code": code}),
        "received": ("websocket_messages_received_total", consumer),
        "sent": ("websocket_messages_sent_total", consumer),
        "round_trips": ("channel_layer_round_trip_seconds_count", {}),
    }
    return {
        key: REGISTRY.get_sample_value(name, labels) or 0.0 for key, (name, labels) in names.items()
    }


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_PORT = 9100


@pytest.mark.parametrize(("code", "counted_as"), [(4321, "4321"), (None, "1006")])
async def test_a_socket_is_counted_from_accept_to_close(metrics_on, code, counted_as):
    before = ping_metrics(counted_as)
    client = await connected()
    for n in range(3):
        await client.send_to(text_data=json.dumps({"ping": n}))
        assert json.loads(await client.receive_from()) == {"pong": n}
    await client.send_to(text_data="not json")  # received, and answered with an error
    await client.receive_from()
    assert ping_metrics(counted_as) == {
        **before,
        "connects": before["connects"] + 1,
        "open": before["open"] + 1,
        "received": before["received"] + 4,
        "sent": before["sent"] + 4,
        "round_trips": before["round_trips"] + 3,
    }
    # None: the connection dropped with no close frame.
    await client.send_input({"type": "websocket.disconnect", "code": code})
    await client.wait()
    after = ping_metrics(counted_as)
    assert (after["open"], after["closes"]) == (before["open"], before["closes"] + 1)


async def test_nothing_is_counted_with_metrics_off(settings):
    settings.METRICS_PORT = 0
    before = ping_metrics("4321")
    client = await connected()
    await client.send_to(text_data=json.dumps({"ping": 1}))
    await client.receive_from()
    await client.disconnect(code=4321)
    assert ping_metrics("4321") == before


async def test_a_ping_echo_sent_by_anyone_else_is_answered_and_not_timed(metrics_on):
    before = ping_metrics("1000")["round_trips"]
    client = await connected()
    channel_layer = get_channel_layer()
    await channel_layer.group_send(server_group(), {"type": "ping.echo", "ping": "from afar"})
    assert json.loads(await client.receive_from()) == {"pong": "from afar"}
    assert ping_metrics("1000")["round_trips"] == before
    await client.disconnect()


# --- HTTP, per view (ViewMetricsMiddleware) ------------------------------------


@pytest.fixture
def view_metrics(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "apps.core.metrics.ViewMetricsMiddleware"]


def http_counts(view: str, method: str, status: str) -> dict[str, float]:
    samples = {
        "requests": (
            "django_http_requests_total_by_view_transport_method_total",
            {"view": view, "transport": "http", "method": method},
        ),
        "responses": (
            "django_http_responses_total_by_status_view_method_total",
            {"status": status, "view": view, "method": method},
        ),
        "timed": (
            "django_http_requests_latency_seconds_by_view_method_count",
            {"view": view, "method": method},
        ),
    }
    return {
        key: REGISTRY.get_sample_value(name, labels) or 0.0
        for key, (name, labels) in samples.items()
    }


def test_a_request_is_counted_and_timed_under_its_route_name(view_metrics, client):
    before = http_counts("admin:login", "GET", "200")
    assert client.get("/admin/login/").status_code == 200
    assert http_counts("admin:login", "GET", "200") == {
        key: value + 1 for key, value in before.items()
    }


def test_a_path_no_route_matches_is_one_series_not_one_per_path(view_metrics, client):
    before = http_counts("<unnamed view>", "GET", "404")
    assert client.get("/no/such/page/").status_code == 404
    assert client.get("/another/missing/page/").status_code == 404
    after = http_counts("<unnamed view>", "GET", "404")
    assert after == {**before, "responses": before["responses"] + 2, "timed": before["timed"] + 2}


def test_an_unknown_method_is_one_series_not_one_per_method(view_metrics, client):
    before = http_counts("admin:login", "<invalid method>", "405")
    response = client.generic("BREW", "/admin/login/")
    assert response.status_code == 405
    assert http_counts("admin:login", "<invalid method>", "405") == {
        key: value + 1 for key, value in before.items()
    }
