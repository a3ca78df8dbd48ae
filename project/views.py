import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.views.defaults import server_error as django_server_error


def server_error(request):
    """Django's 500 page, except while PostgreSQL is unreachable (a restart, a
    failover): then 503 with Retry-After, since the request was fine and will
    work again shortly. Database connections recover by themselves
    (CONN_HEALTH_CHECKS). Called inside Django's exception handling, so the
    exception is sys.exc_info()'s, wherever it was raised (view or middleware)."""
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        response = HttpResponse(
            "Temporarily unavailable: please try again in a moment.\n",
            status=503,
            content_type="text/plain",
        )
        response["Retry-After"] = "5"
        return response
    return django_server_error(request)
