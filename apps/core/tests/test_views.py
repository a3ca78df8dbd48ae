"""Liveness and readiness, against the real PostgreSQL and Redis of the test stack."""

import threading

import pytest
from django.test import override_settings
from prometheus_client import REGISTRY

from apps.core import draining, views

pytestmark = pytest.mark.django_db(transaction=True)

# A Redis URL where nothing listens: connections are refused at once.
DEAD_REDIS = "redis://127.0.0.1:1/0"


def dead_cache():
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": DEAD_REDIS,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
    }


@pytest.fixture(autouse=True)
def fresh_readiness():
    """Each test checks the dependencies it has set up, not the last test's."""
    views.readiness_checks_recent.forget()
    yield
    views.readiness_checks_recent.forget()


def test_healthz_answers_for_any_host(client):
    # Docker and Kubernetes probe by IP address, which is no allowed host.
    response = client.get("/healthz", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_every_dependency_ok(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "channel_layer": "ok"},
    }


def test_readyz_names_the_cache_when_it_is_down(client, settings):
    settings.CACHES = {**settings.CACHES, "default": dead_cache()}
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "ok",
        "cache": "failed",
        "channel_layer": "ok",
    }


def test_readyz_through_the_public_site_names_no_dependency(client, settings):
    # nginx adds X-Forwarded-For to every request it passes on; probes do not.
    settings.CACHES = {**settings.CACHES, "default": dead_cache()}
    response = client.get("/readyz", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}


def test_while_one_request_checks_again_the_others_get_the_last_answer_at_once():
    answers = iter(["first", "second"])
    checking, release = threading.Event(), threading.Event()

    def slow_check():
        answer = next(answers)
        if answer == "second":  # a dependency that takes its time
            checking.set()
            release.wait(10)
        return answer

    throttled = views.Throttled(slow_check, seconds=0)  # every call finds it due
    assert throttled() == "first"
    refreshed, meanwhile = [], []
    refreshing = threading.Thread(target=lambda: refreshed.append(throttled()))
    refreshing.start()
    try:
        assert checking.wait(5)
        asking = threading.Thread(target=lambda: meanwhile.append(throttled()), daemon=True)
        asking.start()
        asking.join(timeout=2)  # answered in microseconds, or waiting on the check
        assert meanwhile == ["first"]
    finally:
        release.set()
        refreshing.join(timeout=5)
    assert refreshed == ["second"]


def test_readyz_names_the_channel_layer_when_it_is_down(client, settings):
    layers = {
        "default": {
            "BACKEND": settings.CHANNEL_LAYERS["default"]["BACKEND"],
            "CONFIG": {"hosts": [{"address": DEAD_REDIS, "socket_connect_timeout": 1}]},
        }
    }
    # channels caches its layers; override_settings makes it build them anew.
    with override_settings(CHANNEL_LAYERS=layers):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["channel_layer"] == "failed"
    assert response.json()["checks"]["database"] == "ok"


def test_readyz_checks_at_most_once_a_second_however_often_it_is_asked(client, monkeypatch):
    runs = []
    monkeypatch.setattr(views, "READINESS_CHECKS", {"counted": lambda: runs.append(1)})
    answers = [client.get("/readyz") for _ in range(20)]
    assert [a.status_code for a in answers] == [200] * 20
    assert len(runs) == 1
    # A second later (here: when forgotten), the next request checks again.
    views.readiness_checks_recent.forget()
    client.get("/readyz")
    assert len(runs) == 2


def test_readyz_says_draining_at_once_even_with_a_recent_ok(client, monkeypatch, tmp_path):
    monkeypatch.setattr(draining, "DRAIN_MARKER", tmp_path / "draining")
    assert client.get("/readyz").status_code == 200
    draining.DRAIN_MARKER.touch()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "draining"}


def test_readyz_sets_readiness_check_ok_for_each_check(client, settings):
    settings.METRICS_PORT = 9100
    settings.CACHES = {**settings.CACHES, "default": dead_cache()}
    client.get("/readyz")
    assert {
        check: REGISTRY.get_sample_value("readiness_check_ok", {"check": check})
        for check in ("database", "cache", "channel_layer")
    } == {"database": 1, "cache": 0, "channel_layer": 1}
