import logging
import math
import sys
import threading
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.views.defaults import server_error as django_server_error
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .checks import READINESS_CHECKS
from .draining import is_draining
from .metrics import readiness_check_ok

logger = logging.getLogger(__name__)

# What the cache (django-redis) and redis-py raise while Redis does not answer.
RedisUnreachable = ConnectionInterrupted | RedisConnectionError | RedisTimeoutError


def liveness(request):
    """The process answers. Touches nothing outside it: a Redis or PostgreSQL
    outage must not get healthy processes restarted."""
    return JsonResponse({"status": "ok"})


class Throttled:
    """A function whose result is computed anew at most once every `seconds`
    in this process, and shared meanwhile. While one thread computes it
    again, the others get the last result at once, rather than wait on a slow
    dependency (its timeout) for an answer a second newer; only the very
    first call, which has no result to give, waits."""

    def __init__(self, function, *, seconds: float):
        self.function, self.seconds = function, seconds
        self.lock = threading.Lock()
        self.forget()

    def forget(self) -> None:
        self.computed_at, self.result = -math.inf, None

    def __call__(self):
        if time.monotonic() - self.computed_at < self.seconds:
            return self.result
        # Without a result yet, wait for the thread computing it; with one,
        # compute it again only if no other thread is doing so.
        if self.lock.acquire(blocking=self.result is None):
            try:
                if time.monotonic() - self.computed_at >= self.seconds:
                    self.result = self.function()
                    self.computed_at = time.monotonic()
            finally:
                self.lock.release()
        return self.result


def readiness_checks_run() -> dict[str, str]:
    """Each dependency's check: "ok" or "failed" (and the error in the log,
    and readiness_check_ok{check} in the metrics)."""
    checks = {}
    for name, check in READINESS_CHECKS.items():
        try:
            check()
        except Exception:
            logger.exception("readiness check %r failed", name)
            checks[name] = "failed"
        else:
            checks[name] = "ok"
        if settings.METRICS_PORT:
            readiness_check_ok.labels(name).set(checks[name] == "ok")
    return checks


# /readyz is public (nginx passes it on, like any path), and each check is a
# round trip to PostgreSQL, Redis and the channel layer: checked at most once a
# second per process, any number of requests costs them at most that, and an
# outage's failed checks (which wait out their timeouts) are not redone for
# each request either. Probes ask every few seconds, so an answer up to a
# second old tells them nothing later than they would notice anyway.
readiness_checks_recent = Throttled(readiness_checks_run, seconds=1)


def readiness(request):
    """Every dependency answers; 503 otherwise, so a load balancer stops
    sending traffic. A draining server (one that is stopping) is not ready,
    whatever its dependencies say: that is read on every request, never from
    the last check, so it shows at once.

    Which dependency failed is told to those who ask web and asgi directly
    (Docker's and Kubernetes' probes, nginx's follower, an operator on the
    host), not to the public site: nginx adds X-Forwarded-For to every
    request it passes on (nginx/snippets/proxy-headers.conf), and the probes
    send none."""
    if is_draining():
        return JsonResponse({"status": "draining"}, status=503)
    checks = readiness_checks_recent()
    ready = all(result == "ok" for result in checks.values())
    answer = {"status": "ok" if ready else "unavailable"}
    if "HTTP_X_FORWARDED_FOR" not in request.META:
        answer["checks"] = checks
    return JsonResponse(answer, status=200 if ready else 503)


def server_error(request):
    """Django's 500 page, except while PostgreSQL or Redis is unreachable (a
    restart, a failover; Redis for a view that uses the cache, such as the
    account pages' limits on mail): then 503 with Retry-After, since the request was fine and will
    work again shortly. Database connections recover by themselves
    (CONN_HEALTH_CHECKS). Called inside Django's exception handling, so the
    exception is sys.exc_info()'s, wherever it was raised (view or middleware)."""
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError | RedisUnreachable):
        response = HttpResponse(
            "Temporarily unavailable: please try again in a moment.\n",
            status=503,
            content_type="text/plain",
        )
        response["Retry-After"] = "5"
        return response
    return django_server_error(request)
