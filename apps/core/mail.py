"""Mail: sent by the worker, never inside a request.

MAILERS (project/settings/base.py) has two mailers:
- "default", which every sender uses (send_mail(), EmailMessage.send(),
  allauth's mail, password resets): TaskBackend, which stores each message as
  a task, in the caller's transaction. Sending costs a request one INSERT, so
  a slow or unreachable mail server never holds a Gunicorn thread, and a
  message of a request that rolls back is never sent.
- "transport", what the worker sends through: SMTP as EMAIL_URL names it, or,
  with no EMAIL_URL, LogBackend, which writes each message to the worker's
  log (and `check --deploy` warns that nothing is sent).

A message the server does not take (down, refusing, timing out) is tried again
by the worker, with a growing delay up to TASK_RETRY_MAX_SECONDS, for about
a day (TASK_MAX_ATTEMPTS_BY_TASK), until the server answers; then it is sent
once. Each message keeps the Message-ID it was given when stored, so that in
the rare case of a worker killed between the server's acceptance and its
record of it (the task then runs again), the copy is recognisably the same
message.

A message travels as its parts (subject, bodies, addresses, headers,
attachments), JSON in the task's row, and is built again in the worker, so
any Django mail backend can be the transport. Once sent, the row keeps the
recipients, the subject and the Message-ID alone: the body may hold a
password reset link, which must not stay readable in the admin's task results
and in every backup for TASK_RESULTS_KEEP_DAYS.
"""

import base64
import logging
from email.utils import parseaddr

from django.conf import settings
from django.core import checks
from django.core.mail import EmailMessage, EmailMultiAlternatives, mailers, make_msgid
from django.core.mail.backends.base import BaseEmailBackend
from django.tasks import TaskContext, task
from django_tasks_db.models import DBTaskResult

logger = logging.getLogger(__name__)


def message_parts(message: EmailMessage) -> dict:
    """The message as JSON values, with a Message-ID of its own if it had none."""
    headers = dict(message.extra_headers)
    if not any(name.lower() == "message-id" for name in headers):
        sender = parseaddr(message.from_email or settings.DEFAULT_FROM_EMAIL)[1]
        headers["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    attachments = []
    for attachment in message.attachments:
        if not isinstance(attachment, tuple):  # a MIME part built by hand
            raise TypeError("attachments must be (filename, content, mimetype), not MIME parts")
        filename, content, mimetype = attachment
        if isinstance(content, str):
            content = content.encode()
        attachments.append([filename, base64.b64encode(content).decode(), mimetype])
    return {
        "subject": message.subject,
        "body": message.body,
        "content_subtype": message.content_subtype,
        "from_email": message.from_email,
        "to": list(message.to),
        "cc": list(message.cc),
        "bcc": list(message.bcc),
        "reply_to": list(message.reply_to),
        "headers": headers,
        "alternatives": [list(a) for a in getattr(message, "alternatives", [])],
        "attachments": attachments,
    }


def message_from_parts(parts: dict) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=parts["subject"],
        body=parts["body"],
        from_email=parts["from_email"],
        to=parts["to"],
        cc=parts["cc"],
        bcc=parts["bcc"],
        reply_to=parts["reply_to"],
        headers=parts["headers"],
        alternatives=[tuple(a) for a in parts["alternatives"]],
    )
    message.content_subtype = parts["content_subtype"]
    for filename, content, mimetype in parts["attachments"]:
        message.attach(filename, base64.b64decode(content), mimetype)
    return message


# What a sent message's row keeps.
KEPT_AFTER_SENDING = ("to", "cc", "bcc", "subject")


@task(takes_context=True)
def deliver(context: TaskContext, parts: dict) -> str:
    """Send one message through the transport mailer: raises (and so is tried
    again) unless the server took it. Returns its Message-ID."""
    message_id = parts["headers"]["Message-ID"]
    if "body" not in parts:
        # Sent, and its row emptied, by an attempt whose worker died before
        # recording it: sent once is enough.
        return message_id
    message = message_from_parts(parts)
    if mailers["transport"].send_messages([message]) != 1:
        raise RuntimeError("the mail transport did not send the message")
    kept = {name: parts[name] for name in KEPT_AFTER_SENDING} | {
        "headers": {"Message-ID": message_id}
    }
    row = DBTaskResult.objects.filter(id=context.task_result.id)
    row.update(args_kwargs={**row.values_list("args_kwargs", flat=True).get(), "args": [kept]})
    return message_id


class TaskBackend(BaseEmailBackend):
    """MAILERS["default"]: each message becomes a `deliver` task."""

    def send_messages(self, email_messages) -> int:
        count = 0
        for message in email_messages:
            if message.recipients():
                deliver.enqueue(message_parts(message))
                count += 1
        return count


class LogBackend(BaseEmailBackend):
    """MAILERS["transport"] with no EMAIL_URL: each message, whole, as one log
    line of the worker, where `docker compose logs worker` shows it (links in
    it included). For a stack that has no mail server yet; `check --deploy`
    says nothing is sent."""

    def send_messages(self, email_messages) -> int:
        for message in email_messages:
            logger.info(
                "mail not sent (no EMAIL_URL): to %s, subject %r\n%s",
                ", ".join(message.recipients()),
                message.subject,
                message.body,
            )
        return len(email_messages)


@checks.register(checks.Tags.compatibility, deploy=True)
def transport_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """`check --deploy`: mail goes nowhere without EMAIL_URL."""
    if settings.MAILERS["transport"]["BACKEND"] == "apps.core.mail.LogBackend":
        return [
            checks.Warning(
                "No mail is sent: EMAIL_URL is not set, so the worker writes each "
                "message to its log (account confirmations and password resets too).",
                hint="Set EMAIL_URL (smtp+tls://user@host:587) and EMAIL_PASSWORD_FILE, "
                "and DEFAULT_FROM_EMAIL: docs/configuration.md.",
                id="core.W001",
            )
        ]
    return []
