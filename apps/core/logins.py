"""Failed logins, as django-axes counts them (AXES_* in project/settings/base.py):
whom a failure is counted against, and what a locked-out client is told."""

import math

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_cool_off
from django.conf import settings
from django.db.models import Sum
from django.http import HttpResponse
from django.shortcuts import render

from apps.core import clients


def client_network(request) -> str | None:
    """The client address that failures are counted against (AXES_CLIENT_IP_CALLABLE):
    REMOTE_ADDR, which ClientAddressMiddleware has set to the address nginx saw,
    IPv6 by its /64."""
    return clients.client_network(request.META.get("REMOTE_ADDR"))


def lockout_response(request, original_response, credentials) -> HttpResponse:
    """429 Too Many Requests, saying when to try again, in place of whatever
    the login view answered. Retry-After is the whole cool-off: a lockout ends
    that long after the last failure it counted, and failures sent during it
    are not counted (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT)."""
    minutes = math.ceil(get_cool_off(request).total_seconds() / 60)
    response = render(request, "core/login_locked_out.html", {"minutes": minutes}, status=429)
    response["Retry-After"] = str(minutes * 60)
    return response


def account_name(request, credentials: dict | None) -> str | None:
    """The account that failures are counted against (AXES_USERNAME_CALLABLE):
    the address as typed into either sign-in form, in lower case, as accounts
    are found (apps/accounts/models.py), so that changing its case is not a
    new account to guess at."""
    fields = credentials or request.POST
    name = fields.get("email") or fields.get("username") or fields.get("login")
    return name.strip().lower() if isinstance(name, str) else None


class LoginFailures(AxesDatabaseHandler):
    """django-axes' database handler, with a limit for each of its two counts
    (AXES_LOCKOUT_PARAMETERS: the client, then the pair of account and
    client): AXES_FAILURE_LIMIT failures at one account from one client lock
    that pair, LOGIN_FAILURE_LIMIT_PER_CLIENT from one client lock it at
    every account. axes compares one number with one limit, AXES_FAILURE_LIMIT;
    so the client's count is given scaled to it."""

    def get_failures(self, request, credentials=None) -> int:
        by_client, by_pair = (
            attempts.aggregate(failures=Sum("failures_since_start"))["failures"] or 0
            for attempts in self.get_user_attempts(request, credentials)
        )
        pair_limit = settings.AXES_FAILURE_LIMIT
        return max(by_pair, by_client * pair_limit // settings.LOGIN_FAILURE_LIMIT_PER_CLIENT)
