"""One request id from the edge to every log line about that request.

nginx gives every request an id, or keeps the one a trusted proxy in front of
it sent (nginx/default.conf.template, $x_request_id), passes it to Gunicorn
and Daphne in X-Request-ID, and returns it in the response. Here:

- `request_context` holds what the log lines of the request being served
  share (its id, method, path, client address), for as long as it is served:
  an HTTP request (apps.core.middleware.RequestIdMiddleware, in Django,
  until request_finished) or a
  WebSocket connection, from its handshake to its close (AsgiRequestContext
  below, around the whole ASGI application);
- `RequestContextFilter`, on the log handler (LOGGING in
  project/settings/base.py), writes them into every record logged meanwhile,
  so Django's own lines and the apps' carry them with no work of their own;
- `AsgiRequestContext` also writes Daphne's access log, in the same schema
  (project/logs.py), which Daphne's own cannot: it sees no request headers.

Nothing here imports Django's models: the logging configuration imports this
module before the app registry is ready.
"""

import logging
import re
import time
from contextvars import ContextVar

HEADER = "X-Request-ID"
# What nginx passes on is always one of these (its own are 32 hex digits);
# anything else did not come through it, and is not believed.
REQUEST_ID = re.compile(r"[0-9A-Za-z._:-]{1,128}")

# The fields of the request being served, or None between requests. A dict
# made once per request, so that a log line costs one lookup.
request_context: ContextVar[dict | None] = ContextVar("request_context", default=None)


def request_context_clear(**kwargs) -> None:
    """On Django's request_finished (apps/core/apps.py): the response has
    gone, and the thread may serve another request next. Not when
    RequestIdMiddleware returns: Django logs a 4xx or 5xx answer
    (django.request's "Not Found: ...") after the middleware have."""
    request_context.set(None)


def request_id_valid(value: str | None) -> str | None:
    """The id if it has the shape nginx gives ids, else None."""
    return value if value is not None and REQUEST_ID.fullmatch(value) else None


class RequestContextFilter(logging.Filter):
    """Adds the request being served (request_id, method, path, client) to
    every record; a field the record already has (an access log's) is kept.
    Django's django.request records carry their status as status_code: it
    becomes the schema's status."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = request_context.get()
        if fields is not None:
            for name, value in fields.items():
                if name not in record.__dict__:
                    setattr(record, name, value)
        status = record.__dict__.get("status_code")
        if status is not None and "status" not in record.__dict__:
            record.status = status
        return True


# Daphne's access log. Its own (`daphne` with --verbosity 1) is plain text
# with no request id, so deploy/start-asgi.sh turns it off and this writes it.
access_log = logging.getLogger("daphne.access")

# The probes (Docker's health check, every few seconds) are answered and not
# logged, as Daphne's runserver leaves them out in `make dev`: they would
# bury the requests people make.
PROBE_PATHS = frozenset({"/healthz", "/readyz"})


def scope_header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class AsgiRequestContext:
    """ASGI middleware around the whole application (project/asgi.py): for
    each HTTP request and each WebSocket connection, request_context while it
    is served, and its access log lines: `WSCONNECT` when the socket is
    accepted, `WSDISCONNECT` when it ends (duration: how long it was open;
    close_code: the close frame's code), `WSREJECT` when it is refused, and
    one line per HTTP request."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind not in ("http", "websocket") or (kind == "http" and scope["path"] in PROBE_PATHS):
            return await self.app(scope, receive, send)
        fields = {
            "request_id": request_id_valid(scope_header(scope, b"x-request-id")),
            # A WebSocket's handshake is a GET, which nginx logs as such.
            "method": scope.get("method", "GET"),
            "path": scope["path"],
            # Daphne's --proxy-headers: the address nginx saw (deploy/start-asgi.sh).
            "client": (scope.get("client") or [None])[0],
        }
        token = request_context.set(fields)
        started = time.monotonic()
        outcome: dict[str, int | None] = {"status": None, "close_code": None}

        def log(action: str, **extra) -> None:
            access_log.info("%s %s", action, fields["path"], extra=extra)

        async def receive_noting():
            message = await receive()
            if message["type"] == "websocket.disconnect" and outcome["close_code"] is None:
                outcome["close_code"] = message.get("code")
            return message

        async def send_noting(message):
            kind = message["type"]
            if kind == "http.response.start":
                outcome["status"] = message["status"]
            elif kind == "websocket.accept":
                outcome["status"] = 101
                await send(message)
                log("WSCONNECT", status=101)
                return
            elif kind == "websocket.close":
                if outcome["status"] is None:
                    outcome["status"] = 403  # closed before it was accepted: refused
                elif outcome["close_code"] is None:
                    outcome["close_code"] = message.get("code", 1000)
            await send(message)

        try:
            await self.app(scope, receive_noting if kind == "websocket" else receive, send_noting)
        finally:
            duration = round(time.monotonic() - started, 6)
            if kind == "http":
                log(scope.get("method", "GET"), status=outcome["status"], duration=duration)
            elif outcome["status"] == 101:
                log(
                    "WSDISCONNECT",
                    status=101,
                    duration=duration,
                    close_code=outcome["close_code"],
                )
            else:
                log("WSREJECT", status=outcome["status"] or 403, duration=duration)
            request_context.reset(token)
