from django.shortcuts import render
from django.views.decorators.cache import cache_control

from .visits import visit_record

# How long browsers and nginx (which micro-caches public responses, see
# nginx/default.conf.template) may reuse the about page without asking Django.
ABOUT_MAX_AGE = 60


def home(request):
    visits = visit_record(session=request.session)
    return render(request, "demo/home.html", {"visits": visits})


@cache_control(public=True, max_age=ABOUT_MAX_AGE)
def about(request):
    """The same for every visitor: no session, no cookie, so any cache may keep it."""
    return render(request, "demo/about.html")
