"""Failed logins, as django-axes counts them (AXES_* in project/settings/base.py):
whom a failure is counted against, and what a locked-out client is told."""

import ipaddress
import math

from axes.helpers import get_cool_off
from django.http import HttpResponse
from django.shortcuts import render

# One IPv6 client (a home, a phone, a server) is usually given a whole /64, and
# can use any of its 2**64 addresses: counted one by one, they would never run
# out of tries.
IPV6_CLIENT_PREFIX = 64


def client_network(request) -> str | None:
    """The client address that failures are counted against: REMOTE_ADDR,
    which ClientAddressMiddleware has set to the address nginx saw; for IPv6,
    the first address of its /64, which then stands for all of them."""
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return None  # none at all (no test client or server leaves it so)
    if address.version == 6 and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/{IPV6_CLIENT_PREFIX}", strict=False)[0])
    return str(address)


def lockout_response(request, original_response, credentials) -> HttpResponse:
    """429 Too Many Requests, saying when to try again, in place of whatever
    the login view answered. Retry-After is the whole cool-off: a lockout ends
    that long after the last failure it counted, and failures sent during it
    are not counted (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT)."""
    minutes = math.ceil(get_cool_off(request).total_seconds() / 60)
    response = render(request, "core/login_locked_out.html", {"minutes": minutes}, status=429)
    response["Retry-After"] = str(minutes * 60)
    return response
