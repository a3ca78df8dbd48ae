"""Mail as a task (apps/core/mail.py): a send stores the message in the
caller's transaction, and the worker's `deliver` sends it, whole, through the
transport, then keeps no more of it than its recipients and subject. Through
real SMTP to the mail catcher, with the server hanging: tests/e2e/test_mail.py."""

import logging

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives, send_mail
from django.db import transaction
from django.tasks.base import TaskResultStatus
from django.test import override_settings
from django_tasks_db.models import DBTaskResult

from apps.core.mail import deliver
from apps.core.tasks.worker import Worker, max_attempts, retry_delay
from apps.core.tests.test_tasks_worker import run_next

pytestmark = pytest.mark.django_db

# As the settings have them, but the transport is Django's test outbox.
AS_DEPLOYED = {
    "default": {"BACKEND": "apps.core.mail.TaskBackend"},
    "transport": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"},
}


def stored() -> list[dict]:
    return [row.args_kwargs["args"][0] for row in DBTaskResult.objects.order_by("enqueued_at")]


@override_settings(MAILERS=AS_DEPLOYED)
def test_a_message_is_stored_as_a_task_and_sent_only_by_the_worker():
    link = "Your link: https://example.com/reset/abc/"
    send_mail("Hello", link, "from@example.com", ["to@x.org"])
    assert mail.outbox == []  # nothing sent inside the request
    row = run_next(Worker())
    [sent] = mail.outbox
    assert (sent.subject, sent.body, sent.to) == (
        "Hello",
        "Your link: https://example.com/reset/abc/",
        ["to@x.org"],
    )
    assert row.status == TaskResultStatus.SUCCESSFUL
    # Sent: the row no longer holds the body, and its link with it.
    [kept] = stored()
    assert kept == {
        "to": ["to@x.org"],
        "cc": [],
        "bcc": [],
        "subject": "Hello",
        "headers": {"Message-ID": sent.extra_headers["Message-ID"]},
    }


@override_settings(MAILERS=AS_DEPLOYED)
def test_the_message_arrives_whole_and_once_with_the_message_id_it_was_stored_with():
    message = EmailMultiAlternatives(
        "Subject",
        "Text",
        "Site <from@example.com>",
        to=["a@example.com"],
        cc=["b@example.com"],
        bcc=["c@example.com"],
        reply_to=["d@example.com"],
        headers={"X-Tag": "welcome"},
    )
    message.attach_alternative("<p>HTML</p>", "text/html")
    message.attach("notes.txt", "some notes", "text/plain")
    message.attach("image.bin", b"\x00\xff", "application/octet-stream")
    message.send()
    [parts] = stored()
    row = run_next(Worker())

    [sent] = mail.outbox
    assert sent.extra_headers["Message-ID"] == parts["headers"]["Message-ID"]
    assert sent.extra_headers["Message-ID"].endswith("@example.com>")
    headers = sent.message()
    assert headers["From"] == "Site <from@example.com>"
    assert headers["X-Tag"] == "welcome"
    assert sent.recipients() == ["a@example.com", "b@example.com", "c@example.com"]
    assert sent.reply_to == ["d@example.com"]
    assert list(sent.alternatives) == [("<p>HTML</p>", "text/html")]
    assert [(a[0], a[1]) for a in sent.attachments] == [
        ("notes.txt", "some notes"),
        ("image.bin", b"\x00\xff"),
    ]

    # Its worker died after sending, before recording it: the task runs
    # again (take_over_lost), and sends nothing more.
    row.status = TaskResultStatus.READY
    row.save(update_fields=["status"])
    assert run_next(Worker()).status == TaskResultStatus.SUCCESSFUL
    assert len(mail.outbox) == 1


@override_settings(MAILERS=AS_DEPLOYED)
def test_a_message_of_a_transaction_that_rolls_back_is_never_sent():
    with pytest.raises(RuntimeError), transaction.atomic():
        send_mail("Hello", "The body.", "from@example.com", ["to@example.com"])
        raise RuntimeError
    assert stored() == []


@override_settings(
    MAILERS={
        **AS_DEPLOYED,
        "transport": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            # Nobody listens there: the server is down.
            "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 2},
        },
    }
)
def test_a_server_that_does_not_answer_fails_the_attempt_to_be_tried_again_for_a_day():
    send_mail("Hello", "The body.", "from@example.com", ["to@example.com"])
    row = run_next(Worker())
    assert row.status == TaskResultStatus.READY
    assert row.exception_class_path == "builtins.ConnectionRefusedError"
    assert stored()[0]["body"] == "The body."  # kept until it is sent
    # Tried again, up to 5 minutes apart, for about a day.
    attempts = max_attempts(deliver.module_path)
    waited = sum(retry_delay(n).total_seconds() for n in range(1, attempts))
    assert 20 * 3600 < waited < 30 * 3600
    assert retry_delay(attempts).total_seconds() == 300
    assert max_attempts("apps.core.tasks.jobs.sessions_clear") == 5


@override_settings(MAILERS={**AS_DEPLOYED, "transport": {"BACKEND": "apps.core.mail.LogBackend"}})
def test_without_a_transport_the_message_is_written_to_the_log(caplog):
    send_mail("Confirm", "Follow http://x/confirm/abc/", "from@example.com", ["to@example.com"])
    with caplog.at_level(logging.INFO, logger="apps.core.mail"):
        run_next(Worker())
    [record] = [r for r in caplog.records if r.name == "apps.core.mail"]
    assert "to to@example.com, subject 'Confirm'" in record.getMessage()
    assert "http://x/confirm/abc/" in record.getMessage()
