import contextlib
import ipaddress

from .request_id import request_context, request_id_valid
from .views import liveness, readiness

PROBES = {"/healthz": liveness, "/readyz": readiness}


class HealthCheckMiddleware:
    """Answer /healthz and /readyz before anything else runs.

    Docker and Kubernetes probe a container by its own address, which is no
    allowed host, so the Host check in CommonMiddleware would answer 400. These
    two views read nothing from the request, so skipping that check is safe;
    every other path goes through the full middleware stack.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        probe = PROBES.get(request.path_info)
        if probe is not None:
            return probe(request)
        return self.get_response(request)


class ClientAddressMiddleware:
    """Set REMOTE_ADDR to the client's address, which nginx passes in
    X-Forwarded-For (Gunicorn's own REMOTE_ADDR is nginx's address).

    Safe only behind this project's nginx, which sets that header to the one
    address it saw and discards whatever the client sent, and with Gunicorn
    reachable from nginx alone. production.py installs it; runserver, with no
    nginx in front, does not.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        forwarded_for = request.META.get("HTTP_X_FORWARDED_FOR", "").strip()
        # Absent or not a single address: not from our nginx; leave REMOTE_ADDR be.
        with contextlib.suppress(ValueError):
            request.META["REMOTE_ADDR"] = str(ipaddress.ip_address(forwarded_for))
        return self.get_response(request)


class RequestIdMiddleware:
    """Every log line written while Django serves a request carries the
    request's id (X-Request-ID, from nginx), method, path and client address
    (apps/core/request_id.py), until the response has gone
    (request_context_clear). Outermost but for ClientAddressMiddleware,
    which production.py puts before it so that the address is the client's."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_context.set(
            {
                "request_id": request_id_valid(request.META.get("HTTP_X_REQUEST_ID")),
                "method": request.method,
                "path": request.path,
                "client": request.META.get("REMOTE_ADDR"),
            }
        )
        return self.get_response(request)
