"""Sessions through the whole stack: read from their copies in Redis, and a
session removed from PostgreSQL, by any path, is not served again; a visit
that needs no session writes none.

DATABASE_URL is the stack's own database (the unit tests use a copy), and
the copies these tests look at are the stack's, in its Redis database /1.
"""

import time

import pytest
import redis

from apps.core.sessions import VOUCH_SECONDS, copy_key
from project.settings.base import redis_url
from tests.stack import (
    csrf_form,
    is_logged_in,
    log_in,
    log_out,
    logged_in_browser,
    stack_database,
    user_create,
    wait_until,
)

pytestmark = pytest.mark.e2e


def session_rows() -> int:
    with stack_database() as connection:
        return connection.execute("SELECT count(*) FROM django_session").fetchone()[0]


def copies():
    """The stack's session copies: its Redis database /1 (project/settings/base.py)."""
    return redis.Redis.from_url(redis_url("sessions"))


def cookies_of(browser) -> dict:
    """The browser's cookies as they are now, to send again later."""
    return {cookie.name: cookie.value for cookie in browser.cookies}


def replayed(stack, cookies: dict):
    """A new browser holding cookies saved earlier, as a client replaying them would."""
    browser = stack.browser()
    browser.cookies.update(cookies)
    return browser


def copied_browser(stack):
    """A logged-in browser whose session has its copy in Redis (the page it
    read after logging in made it)."""
    browser = logged_in_browser(stack)
    assert copies().exists(copy_key(browser.cookies["sessionid"]))
    return browser


def test_a_logged_in_page_asks_postgres_nothing_for_its_session(stack):
    browser = copied_browser(stack)
    # With the sessions table locked against every reader, the page still
    # answers: its session came from Redis. (Reading the row would wait for
    # the lock, and the request time out.)
    with stack_database() as connection, connection.transaction():
        connection.execute("LOCK TABLE django_session IN ACCESS EXCLUSIVE MODE")
        answer = browser.get(stack.url("/admin/"), allow_redirects=False, timeout=5)
    assert answer.status_code == 200


def test_a_session_deleted_in_postgres_is_refused_within_a_second_everywhere(stack):
    # As an operator logging everyone out after an incident, or clearsessions.
    browser = copied_browser(stack)
    key = browser.cookies["sessionid"]
    with stack_database() as connection:
        deleted = connection.execute("DELETE FROM django_session WHERE session_key = %s", [key])
        assert deleted.rowcount == 1
    # Every web and asgi process reads the one copy: it is gone within 1 s.
    wait_until(lambda: not copies().exists(copy_key(key)), timeout=1, what="the copy dropped")
    for _ in range(6):  # nginx spreads these over the Gunicorn workers
        assert not is_logged_in(stack, browser)
    load = (
        "import django; django.setup()\n"
        f"from apps.core.sessions import SessionStore; print(SessionStore({key!r}).load())"
    )
    for server in stack.containers("asgi") + stack.containers("web"):
        assert stack.run_python(server, load).strip() == "{}", server.name


def test_cookies_replayed_after_logout_are_anonymous(stack):
    browser = copied_browser(stack)
    before_logout = cookies_of(browser)
    assert log_out(stack, browser).status_code == 200
    assert not copies().exists(copy_key(before_logout["sessionid"]))
    assert not is_logged_in(stack, replayed(stack, before_logout))


def test_a_password_change_ends_the_other_sessions(stack):
    email, password = user_create(stack)
    here, elsewhere = stack.browser(), stack.browser()
    for browser in (here, elsewhere):
        log_in(stack, browser, email, password)
        assert is_logged_in(stack, browser)  # each with its copy
    new_password = "a brand new passphrase"
    answer = here.post(
        stack.url("/accounts/password/change/"),
        data=csrf_form(stack, here, "/accounts/password/change/")
        | {"oldpassword": password, "password1": new_password, "password2": new_password},
        headers={"Origin": stack.origin},
        allow_redirects=False,
    )
    assert answer.status_code == 302
    assert is_logged_in(stack, here)
    assert not is_logged_in(stack, elsewhere)


@pytest.mark.chaos
def test_with_the_eviction_path_cut_a_deleted_session_is_refused_within_the_bound(stack):
    browser = copied_browser(stack)
    key = browser.cookies["sessionid"]
    # The worker drops copies and vouches for them; frozen, it does neither.
    with stack.frozen("worker"):
        with stack_database() as connection:
            connection.execute("DELETE FROM django_session WHERE session_key = %s", [key])
        deleted_at = time.monotonic()
        assert copies().exists(copy_key(key))  # nobody dropped it
        wait_until(
            lambda: not is_logged_in(stack, browser),
            timeout=VOUCH_SECONDS + 2,
            what="the deleted session refused",
        )
        assert time.monotonic() - deleted_at <= VOUCH_SECONDS + 1


@pytest.mark.chaos
def test_redis_cut_off_for_30_s_logs_nobody_out_and_its_logouts_hold(stack):
    member, leaving = copied_browser(stack), copied_browser(stack)
    before_logout = cookies_of(leaving)
    newcomer_account = user_create(stack)
    # Cut off, not stopped: a stopped Redis starts empty (it keeps nothing on
    # disk), while one behind a broken network comes back with every copy it
    # held, the leaving member's too.
    redis_server = stack.containers("redis")[0]
    back = stack.docker.networks.get(f"{stack.project}_back")
    back.disconnect(redis_server)
    cut_at = time.monotonic()
    try:
        response = log_out(stack, leaving)
        assert response.status_code == 200
        assert "Logged out" in response.text
        newcomer = stack.browser()
        log_in(stack, newcomer, *newcomer_account)
        while time.monotonic() - cut_at < 30:
            assert is_logged_in(stack, member)
            assert is_logged_in(stack, newcomer)
            time.sleep(2)
    finally:
        back.connect(redis_server, aliases=["redis"])
    stack.wait_ready(timeout=60)
    assert is_logged_in(stack, member)
    assert is_logged_in(stack, newcomer)
    # The worker could not drop the copy and stopped vouching for copies: it
    # is not served, and the worker drops it before vouching again.
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
