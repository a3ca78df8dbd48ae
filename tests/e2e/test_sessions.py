"""Sessions through the whole stack: a session removed from PostgreSQL, by any
path, is never served again, and a visit that needs no session writes none.

DATABASE_URL is the stack's own database (the unit tests use a copy).
"""

import pytest

from tests.stack import is_logged_in, log_out, logged_in_browser, stack_database

pytestmark = pytest.mark.e2e


def session_rows() -> int:
    with stack_database() as connection:
        return connection.execute("SELECT count(*) FROM django_session").fetchone()[0]


def cookies_of(browser) -> dict:
    """The browser's cookies as they are now, to send again later."""
    return {cookie.name: cookie.value for cookie in browser.cookies}


def replayed(stack, cookies: dict):
    """A new browser holding cookies saved earlier, as a client replaying them would."""
    browser = stack.browser()
    browser.cookies.update(cookies)
    return browser


def test_a_session_deleted_in_postgres_is_not_served_again(stack):
    # As an operator logging everyone out after an incident, or clearsessions.
    browser = logged_in_browser(stack)
    with stack_database() as connection:
        deleted = connection.execute(
            "DELETE FROM django_session WHERE session_key = %s", [browser.cookies["sessionid"]]
        )
        assert deleted.rowcount == 1
    assert not is_logged_in(stack, browser)


def test_cookies_replayed_after_logout_are_anonymous(stack):
    browser = logged_in_browser(stack)
    before_logout = cookies_of(browser)
    assert log_out(stack, browser).status_code == 200
    assert not is_logged_in(stack, replayed(stack, before_logout))


@pytest.mark.chaos
def test_a_logout_while_redis_is_unreachable_holds_once_it_is_back(stack):
    browser = logged_in_browser(stack)
    before_logout = cookies_of(browser)
    # Cut off, not stopped: a stopped Redis starts empty (it keeps nothing on
    # disk), while one behind a broken network comes back with what it held.
    redis = stack.containers("redis")[0]
    back = stack.docker.networks.get(f"{stack.project}_back")
    back.disconnect(redis)
    try:
        response = log_out(stack, browser)
        assert response.status_code == 200
        assert "Logged out" in response.text
    finally:
        back.connect(redis, aliases=["redis"])
    stack.wait_ready(timeout=60)
    assert not is_logged_in(stack, replayed(stack, before_logout))


@pytest.mark.parametrize(
    "path",
    [
        "/admin/login/",  # needs CSRF, whose token is a cookie of its own
        "/healthz",
        "/readyz",
        "/no-such-page/",  # any page that does not use the session
    ],
)
def test_a_first_visit_that_needs_no_session_writes_none(stack, path):
    before = session_rows()
    response = stack.browser().get(stack.url(path), allow_redirects=False)
    assert response.status_code in {200, 404}, response.status_code
    assert "sessionid" not in response.cookies
    assert session_rows() == before
