import time

from django.shortcuts import render
from django.views.decorators.cache import cache_control

# How long nginx's micro-cache (and browsers) may keep the public page.
PUBLIC_MAX_AGE = 60
# The slow view's wait: an external API call or a slow query.
SLOW_SECONDS = 0.2


def page(request):
    """A typical page of a site: it counts the visit in the session (a first
    visit creates one) and renders a template."""
    visits = request.session.get("visits", 0) + 1
    request.session["visits"] = visits
    return render(request, "bench/page.html", {"visits": visits})


@cache_control(public=True, max_age=PUBLIC_MAX_AGE)
def public(request):
    """The same for every visitor: no session, no cookie, so any cache may keep it."""
    return render(request, "bench/public.html")


def slow(request):
    """Waits on I/O for SLOW_SECONDS, holding its worker thread, and answers."""
    time.sleep(SLOW_SECONDS)
    return render(request, "bench/public.html")
