"""Wrong passwords through nginx, as browsers send them: too many at one
account from one address, or from one address at any accounts, and logging
in is refused with 429 for a while, there alone (django-axes; AXES_* in
project/settings/base.py, apps/core/logins.py)."""

import time

import pytest

from tests.stack import csrf_form, is_logged_in, log_in, user_create

pytestmark = pytest.mark.e2e

FAILURE_LIMIT = 10  # AXES_FAILURE_LIMIT: at one account, from one client
CLIENT_LIMIT = 30  # LOGIN_FAILURE_LIMIT_PER_CLIENT: from one client, at any accounts
# nginx lets one address POST 5 times a second (bursts of 10): tries paced
# below that reach Django, which is what these tests are about.
NGINX_WRITES_APART = 0.25
WRONG_PASSWORD_FORM = "Please enter the correct email address and password"

# A login from another container on nginx's network (an asgi one): another
# client address, as nginx and so Django see it. Its image has no requests:
# the standard library, as a browser would do it (the form's CSRF token and
# cookie, Host and Origin of the site). Prints the answer's status.
LOG_IN_ELSEWHERE = """
import http.cookiejar, re, urllib.error, urllib.parse, urllib.request

class Stay(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None  # 302 after logging in: report it, do not follow it

cookies = urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
browser = urllib.request.build_opener(cookies, Stay)
url = "http://{address}/admin/login/?next=/admin/"
headers = {{"Host": {host!r}, "Origin": {origin!r}}}
page = browser.open(urllib.request.Request(url, headers=headers), timeout=30).read().decode()
token = re.search('name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
form = {{"csrfmiddlewaretoken": token, "username": {username!r}, "password": {password!r}}}
try:
    answer = browser.open(
        urllib.request.Request(url, urllib.parse.urlencode(form).encode(), headers), timeout=30
    )
except urllib.error.HTTPError as refusal:
    answer = refusal
body = answer.read().decode()
print(answer.status, {wrong_password_form!r} in body)
"""


def log_in_elsewhere(stack, username: str, password: str) -> str:
    """Log in from an asgi container: "302 False" when logged in, "200 True"
    for the form's wrong-password error, "429 False" when refused."""
    code = LOG_IN_ELSEWHERE.format(
        address=stack.address,
        host=stack.host,
        origin=stack.origin,
        username=username,
        password=password,
        wrong_password_form=WRONG_PASSWORD_FORM,
    )
    return stack.run_python(stack.containers("asgi")[0], code).strip()


@pytest.fixture(autouse=True)
def no_lockouts(stack):
    """A lockout lasts 15 minutes, and every test logs in from this
    container's address: none may come from an earlier run, or outlive its
    test."""
    stack.manage("axes_reset")
    yield
    stack.manage("axes_reset")


def test_wrong_passwords_at_one_account_lock_that_address_there_alone(stack):
    account, other_account = user_create(stack), user_create(stack)
    username, _ = account
    browser = stack.browser()
    answers = [log_in(stack, browser, username, "wrong") for _ in range(FAILURE_LIMIT)]

    assert [answer.status_code for answer in answers] == [200] * (FAILURE_LIMIT - 1) + [429]
    assert all(WRONG_PASSWORD_FORM in answer.text for answer in answers[:-1])
    locked = answers[-1]
    assert "Too many failed logins" in locked.text
    assert "Try again in 15 minutes." in locked.text
    assert locked.headers["Retry-After"] == "900"
    # From this address, even the right password is refused...
    assert log_in(stack, browser, *account).status_code == 429
    assert not is_logged_in(stack, browser)
    # ...while the owner, from another address, logs in as usual: the guesses
    # locked nobody else out.
    assert log_in_elsewhere(stack, *account) == "302 False"
    # And this address logs in to another account.
    assert log_in(stack, browser, *other_account).status_code == 200
    assert is_logged_in(stack, browser)


def test_wrong_passwords_from_one_address_at_many_accounts_lock_that_address(stack):
    account = user_create(stack)
    browser = stack.browser()
    answers = []
    for n in range(CLIENT_LIMIT):
        answers.append(log_in(stack, browser, f"nobody-{n}", "wrong"))
        time.sleep(NGINX_WRITES_APART)
    assert [answer.status_code for answer in answers] == [200] * (CLIENT_LIMIT - 1) + [429]
    assert "Too many failed logins" in answers[-1].text
    assert log_in(stack, browser, *account).status_code == 429
    assert log_in_elsewhere(stack, *account) == "302 False"


def test_wrong_passwords_at_the_accounts_sign_in_lock_out_as_the_admins_do(stack):
    browser = stack.browser()

    def sign_in(email: str, password: str):
        return browser.post(
            stack.url("/accounts/login/"),
            data=csrf_form(stack, browser, "/accounts/login/")
            | {"login": email, "password": password},
            headers={"Origin": stack.origin},
            allow_redirects=False,
        )

    answers = [sign_in("nobody@example.com", "wrong") for _ in range(FAILURE_LIMIT)]
    assert [answer.status_code for answer in answers] == [200] * (FAILURE_LIMIT - 1) + [429]
    assert "The email address and/or password you specified are not correct." in answers[0].text
    locked = answers[-1]
    assert "Too many failed logins" in locked.text
    assert locked.headers["Retry-After"] == "900"
    # The admin's sign-in is the same lockout: that account is locked there
    # too, from this address.
    assert log_in(stack, browser, "nobody@example.com", "wrong").status_code == 429
