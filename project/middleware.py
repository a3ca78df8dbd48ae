import contextlib
import ipaddress


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
