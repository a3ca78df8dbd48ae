"""apps.core.views.server_error: a database or Redis outage is a 503, anything else a 500."""

import pytest
from django.core.cache import cache
from django.db import OperationalError
from django.test import Client, override_settings
from django.urls import path


def database_down(request):
    raise OperationalError("connection refused")


def cache_used(request):
    cache.get("anything")


def broken(request):
    raise ValueError("a bug")


urlpatterns = [
    path("database-down/", database_down),
    path("cache-used/", cache_used),
    path("broken/", broken),
]
handler500 = "apps.core.views.server_error"

pytestmark = pytest.mark.urls(__name__)


def test_unreachable_database_is_a_503_with_retry_after():
    response = Client(raise_request_exception=False).get("/database-down/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"


def test_other_errors_are_a_500():
    response = Client(raise_request_exception=False).get("/broken/")
    assert response.status_code == 500


# A Redis server nobody listens for: django-redis's own error, as in an outage.
UNREACHABLE_REDIS = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:9/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1},
    }
}


@override_settings(CACHES=UNREACHABLE_REDIS)
def test_unreachable_redis_is_a_503_with_retry_after():
    response = Client(raise_request_exception=False).get("/cache-used/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
