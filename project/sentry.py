"""Error reports to Sentry, for project/settings/base.py when SENTRY_DSN is set.
https://docs.sentry.io/platforms/python/integrations/django/

Imported only then, so a deployment without Sentry pays nothing for it.
"""

import sentry_sdk
from sentry_sdk.integrations.logging import ignore_logger

from apps.core.request_id import request_context


def request_id_tag(event, hint):
    """Tag each event with the id of the request it happened in, the id its
    log lines carry (apps/core/request_id.py): from the event in Sentry to
    the request's every line, and back. Sentry calls this where the event is
    captured, in the request's own context."""
    fields = request_context.get()
    if fields is not None and fields["request_id"] is not None:
        event.setdefault("tags", {})["request_id"] = fields["request_id"]
    return event


def breadcrumb_without_client(crumb, hint):
    """Log lines become the event's breadcrumbs, with their records' fields:
    every field of the request being served (apps/core/request_id.py), the
    client's address among them. Not that one."""
    crumb.get("data", {}).pop("client", None)
    return crumb


def sentry_init(*, dsn: str, release: str | None, environment: str, **options) -> None:
    """sentry-sdk, with Django's integration (found by itself), for errors only.
    `options` are more of sentry_sdk.init's (a test's transport)."""
    sentry_sdk.init(
        dsn=dsn,
        # The release: SENTRY_RELEASE (a version, a commit), so that an error
        # is tied to the code that raised it. None: sentry-sdk's own guess.
        release=release,
        environment=environment,
        # No personal data: sentry-sdk's default (send_default_pii is
        # deprecated, and passing it at all warns): no cookies, no user (id,
        # e-mail, username), no client address, no request body; headers
        # that carry credentials (Cookie, Authorization, X-Forwarded-For) are
        # left out. project/tests/test_sentry.py holds it.
        # Nor the stack's local variables, which hold whatever the code was
        # handling: a WebSocket's ASGI scope (its cookies, the client's
        # address), a task's arguments (an e-mail address), a form's fields.
        # The traceback and its source lines are still sent.
        include_local_variables=False,
        # Errors only: no performance tracing, which would cost every request.
        traces_sample_rate=None,
        before_send=request_id_tag,
        before_breadcrumb=breadcrumb_without_client,
        **options,
    )
    # Daphne logs (at ERROR) each exception that ends a connection's
    # application, from outside the connection: as an event, it would come a
    # second time, without the request id. Sentry has it already, with the
    # id: a consumer's from the middleware in project/asgi.py, one that
    # escapes Django's handler from the Django integration. (Daphne's other
    # errors on this logger are failures to start, which stop the process.)
    ignore_logger("daphne.server")
