from django.http import HttpResponse
from django.test import RequestFactory

from apps.demo.visits import VISITS_COOKIE, visit_record, visit_remember


def visit(cookies: dict) -> int:
    """One visit by a browser holding `cookies`: the count it is shown, and
    the cookies it holds afterwards (updated in place)."""
    request = RequestFactory().get("/")
    request.COOKIES.update(cookies)
    visits = visit_record(request=request)
    response = HttpResponse()
    visit_remember(response, visits=visits)
    cookies[VISITS_COOKIE] = response.cookies[VISITS_COOKIE].value
    return visits


def test_visit_record_counts_from_one():
    cookies = {}
    assert [visit(cookies) for _ in range(3)] == [1, 2, 3]


def test_the_cookie_lasts_as_long_as_the_browser_session():
    response = HttpResponse()
    visit_remember(response, visits=1)
    cookie = response.cookies[VISITS_COOKIE]
    assert not cookie["max-age"] and not cookie["expires"]
    assert cookie["httponly"]
