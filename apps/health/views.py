import logging

from django.http import JsonResponse

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
