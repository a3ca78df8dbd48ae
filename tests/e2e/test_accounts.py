"""The account pages through nginx, as people use them: in a real browser,
with the mail read from the stack's mail catcher (the `mail` service); the
answers that must not tell who has an account; and a database made before
the user model, stopped at migrate."""

import os
import statistics
import subprocess
import sys
import time
import uuid

import pytest
from playwright.sync_api import expect

from tests.stack import console_errors, csrf_form, link_in, mail_received, stack_database

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"


def new_address(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}@example.com"


def submit(page) -> None:
    page.click("main form button[type=submit]")


def sign_in(page, site: str, email: str, password: str) -> None:
    page.goto(f"{site}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", password)
    submit(page)


def set_password(page, password: str) -> None:
    page.fill("input[name=password1]", password)
    page.fill("input[name=password2]", password)
    submit(page)


def signed_in_as(page, site: str) -> str | None:
    """The address the account pages' menu shows, or None when signed out
    (the page then asks to sign in)."""
    page.goto(f"{site}/accounts/password/change/")
    menu = page.locator("nav[aria-label=Account] span")
    return menu.text_content() if menu.count() else None


def test_sign_up_confirm_sign_in_out_and_reset_the_password_in_a_browser(stack, chromium):
    site = f"http://{stack.address}"
    email = new_address("browser")
    page = chromium.new_page()
    errors = console_errors(page)

    page.goto(f"{site}/accounts/signup/")
    page.fill("input[name=email]", email)
    set_password(page, PASSWORD)
    expect(page).to_have_url(f"{site}/accounts/confirm-email/")

    # Not confirmed: the right password does not sign in.
    sign_in(page, site, email, PASSWORD)
    assert signed_in_as(page, site) is None

    [*_, confirmation] = mail_received(email)
    page.goto(site + link_in(confirmation["text"], "/accounts/confirm-email/"))
    submit(page)
    sign_in(page, site, email, PASSWORD)
    expect(page).to_have_url(f"{site}/accounts/email/")  # LOGIN_REDIRECT_URL
    assert signed_in_as(page, site) == email

    page.goto(f"{site}/accounts/logout/")
    submit(page)
    assert signed_in_as(page, site) is None

    # Forgotten: a link by mail, a new password, and the old one refused.
    sent_before = len(mail_received(email, timeout=0))
    page.goto(f"{site}/accounts/password/reset/")
    page.fill("input[name=email]", email)
    submit(page)
    [*_, reset] = mail_received(email, count=sent_before + 1)
    reset_link = site + link_in(reset["text"], "/accounts/password/reset/key/")
    page.goto(reset_link)
    new_password = "another horse, another staple"
    set_password(page, new_password)
    expect(page).to_have_url(f"{site}/accounts/password/reset/key/done/")
    sign_in(page, site, email, PASSWORD)
    assert signed_in_as(page, site) is None
    sign_in(page, site, email, new_password)
    assert signed_in_as(page, site) == email
    # Every page so far: no script refused, no missing file, no error.
    assert errors == []

    # The link has been used: refused, with a page that says so.
    answer = page.goto(reset_link)
    assert answer.status == 400
    assert "Bad Token" in page.content()
    page.close()


# --- Nothing tells who has an account --------------------------------------------------


def post_form(stack, path: str, form: dict):
    browser = stack.browser()
    return browser.post(
        stack.url(path),
        data=csrf_form(stack, browser, path) | form,
        headers={"Origin": stack.origin},
        allow_redirects=False,
    )


def sign_up(stack, email: str):
    started = time.perf_counter()
    answer = post_form(
        stack, "/accounts/signup/", {"email": email, "password1": PASSWORD, "password2": PASSWORD}
    )
    return answer, time.perf_counter() - started


def test_sign_up_and_reset_answer_alike_for_an_address_with_an_account_or_without(stack):
    taken = new_address("taken")
    assert sign_up(stack, taken)[0].status_code == 302

    # Interleaved, so that the machine's load falls on both alike.
    new_answers, taken_answers = [], []
    for _ in range(7):
        new_answers.append(sign_up(stack, new_address("new")))
        taken_answers.append(sign_up(stack, taken))
    for answer, _ in new_answers + taken_answers:
        assert (answer.status_code, answer.headers["Location"]) == (302, "/accounts/confirm-email/")
        assert answer.text == ""
    # A sign-up hashes the password (PBKDF2's work, on purpose the slow part)
    # whether or not it makes an account: without that, the answer for a
    # taken address came about ten times sooner.
    new_time = statistics.median(t for _, t in new_answers)
    taken_time = statistics.median(t for _, t in taken_answers)
    assert 0.6 < taken_time / new_time < 1.6, (taken_time, new_time)
    with stack_database() as database:
        [count] = database.execute(
            "SELECT count(*) FROM accounts_user WHERE lower(email) = %s", [taken]
        ).fetchone()
    assert count == 1

    known = post_form(stack, "/accounts/password/reset/", {"email": taken})
    unknown = post_form(stack, "/accounts/password/reset/", {"email": new_address("nobody")})
    assert (known.status_code, known.headers["Location"], known.text) == (
        unknown.status_code,
        unknown.headers["Location"],
        unknown.text,
    )


# --- A database made before the user model ------------------------------------------------

# The previous release's settings, as far as migrations go: Django's own
# auth.User, and no accounts app.
BEFORE_THE_USER_MODEL = """
from project.settings.production import *
NEW = ("apps.accounts", "allauth", "allauth.account")
INSTALLED_APPS = [app for app in INSTALLED_APPS if app not in NEW]
AUTH_USER_MODEL = "auth.User"
"""


def test_a_database_made_before_the_user_model_stops_at_migrate_with_what_to_do(stack, tmp_path):
    name = f"before_{uuid.uuid4().hex[:8]}"
    with stack_database(autocommit=True) as database:
        database.execute(f"CREATE DATABASE {name} OWNER app")
    try:
        url = f"postgres://app@db:5432/{name}"
        (tmp_path / "before_user_model.py").write_text(BEFORE_THE_USER_MODEL)
        made = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "--skip-checks"],
            env={
                **os.environ,
                "PYTHONPATH": str(tmp_path),
                "DJANGO_SETTINGS_MODULE": "before_user_model",
                "DJANGO_SECRET_KEY": "only-for-this-test",
                "DATABASE_URL": url,
                "DATABASE_PASSWORD_FILE": "/secrets/postgres_password",
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert made.returncode == 0, made.stderr

        def schema() -> tuple:
            with stack_database(dbname=name) as database:
                tables = database.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
                ).fetchall()
                applied = database.execute(
                    "SELECT app, name FROM django_migrations ORDER BY 1, 2"
                ).fetchall()
            return tables, applied

        before = schema()
        assert ("auth_user",) in before[0]
        # The stack's own migrate, as its service runs it.
        web = stack.containers("web")[0]
        result = web.exec_run(
            ["python", "manage.py", "migrate", "--noinput"], environment={"DATABASE_URL": url}
        )
        output = result.output.decode()
        assert result.exit_code != 0
        assert "This database was made before the project had its own user model" in output
        assert "docker compose down --volumes" in output
        assert "Traceback" not in output
        assert schema() == before  # nothing half-applied
    finally:
        with stack_database(autocommit=True) as database:
            database.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
