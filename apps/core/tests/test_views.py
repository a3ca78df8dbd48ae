"""Liveness and readiness, against the real PostgreSQL and Redis of the test stack."""

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db(transaction=True)

# A Redis URL where nothing listens: connections are refused at once.
DEAD_REDIS = "redis://127.0.0.1:1/0"


def dead_cache():
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": DEAD_REDIS,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
    }


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
