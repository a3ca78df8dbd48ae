import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.views.defaults import server_error as django_server_error

from .checks import READINESS_CHECKS
from .draining import is_draining

logger = logging.getLogger(__name__)


def liveness(request):
    """The process answers. Touches nothing outside it: a Redis or PostgreSQL
    outage must not get healthy processes restarted."""
    return JsonResponse({"status": "ok"})


def readiness(request):
    """Every dependency answers; 503 names each one that does not, so a load
    balancer stops sending traffic and an operator sees why. A draining server
    (one that is stopping) is not ready, whatever its dependencies say."""
    if is_draining():
        return JsonResponse({"status": "draining"}, status=503)
    checks = {}
    for name, check in READINESS_CHECKS.items():
        try:
            check()
        except Exception:
            logger.exception("readiness check %r failed", name)
            checks[name] = "failed"
        else:
            checks[name] = "ok"
    ready = all(result == "ok" for result in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


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
