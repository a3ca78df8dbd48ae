"""The visit counter, kept in a cookie of its own, signed: counting a visit
writes nothing on the server.

Kept in the session, as it once was, the count made every first visit save
a session, a row in PostgreSQL; and to a client that keeps no cookies every
visit is a first one, so anyone could fill the table with GETs. A signed
cookie holds the count instead: the visitor can send back a count it was
given, never make one up, and nothing is stored for it anywhere."""

from django.conf import settings
from django.core import signing

VISITS_COOKIE = "demo_visits"
# Signed with SECRET_KEY and this salt, so no other signed value of the
# site's can pass for a count.
VISITS_SALT = "apps.demo.visits"


def visit_record(*, request) -> int:
    """The visitor's visits, this one included: one more than its cookie
    says, or 1 without a cookie (or with one that was not signed here)."""
    try:
        visits = int(request.get_signed_cookie(VISITS_COOKIE, salt=VISITS_SALT))
    except (KeyError, ValueError, signing.BadSignature):
        visits = 0
    return visits + 1


def visit_remember(response, *, visits: int) -> None:
    """Give the visitor the new count, until its browser closes: "visits in
    this session", as the page says."""
    response.set_signed_cookie(
        VISITS_COOKIE,
        str(visits),
        salt=VISITS_SALT,
        httponly=True,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )
