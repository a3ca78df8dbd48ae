"""apps.core.views.server_error: a database outage is a 503, anything else a 500."""

import pytest
from django.db import OperationalError
from django.test import Client
from django.urls import path


def database_down(request):
    raise OperationalError("connection refused")


def broken(request):
    raise ValueError("a bug")


urlpatterns = [path("database-down/", database_down), path("broken/", broken)]
handler500 = "apps.core.views.server_error"

pytestmark = pytest.mark.urls(__name__)


def test_unreachable_database_is_a_503_with_retry_after():
    response = Client(raise_request_exception=False).get("/database-down/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"


def test_other_errors_are_a_500():
    response = Client(raise_request_exception=False).get("/broken/")
    assert response.status_code == 500
