"""Mail leaves through the worker, never inside a request: with the mail
server hanging, a password reset's page answers at once, and the mail arrives
once the server answers again, once (apps/core/mail.py)."""

import time
import uuid

import pytest

from tests.stack import csrf_form, mail_received, stack_database, wait_until

pytestmark = pytest.mark.e2e


def mail_task(to: str) -> tuple[str, int, str] | None:
    """The mail task for `to`: (status, attempts so far, last error's class)."""
    with stack_database() as database:
        return database.execute(
            "SELECT status, jsonb_array_length(worker_ids), exception_class_path"
            "  FROM django_tasks_database_dbtaskresult"
            " WHERE task_path = 'apps.core.mail.deliver' AND args_kwargs::text LIKE %s",
            [f'%"{to}"%'],
        ).fetchone()


def test_a_hanging_mail_server_holds_no_request_and_the_mail_arrives_once_it_answers(stack):
    email = f"reset-{uuid.uuid4().hex[:10]}@example.com"
    make_user = f"from apps.accounts.models import User; User.objects.create_user({email!r}, 'x')"
    stack.manage("shell", "-c", make_user)
    # Frozen, not stopped: connections to it are accepted and then never
    # answered, as a mail server that hangs: what would hold a request for
    # the whole SMTP timeout if the request sent the mail.
    with stack.frozen("mail"):
        browser = stack.browser()
        form = csrf_form(stack, browser, "/accounts/password/reset/")
        started = time.monotonic()
        answer = browser.post(
            stack.url("/accounts/password/reset/"),
            data=form | {"email": email},
            headers={"Origin": stack.origin},
            allow_redirects=False,
        )
        took = time.monotonic() - started
        assert (answer.status_code, answer.headers["Location"]) == (
            302,
            "/accounts/password/reset/done/",
        )
        # The SMTP timeout is 10 s (EMAIL_TIMEOUT_SECONDS).
        assert took < 5, took
        # The worker tried, and will try again.
        wait_until(
            lambda: (task := mail_task(email)) and task[0] == "READY" and task[1] >= 1,
            timeout=60,
            what="a failed attempt, to be retried",
        )

    wait_until(lambda: mail_task(email)[0] == "SUCCESSFUL", timeout=120, what="the mail sent")
    # Sent once: the task succeeded once, and the catcher (which may list a
    # message a moment after taking it) holds one.
    [message] = mail_received(email)
    assert message["subject"].endswith("Password Reset Email")
    assert "/accounts/password/reset/key/" in message["text"]
