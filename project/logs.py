"""How every Python process of the project writes its log lines: Django's
(LOGGING in project/settings/base.py), Gunicorn's (deploy/gunicorn.conf.py)
and Daphne's (apps/core/request_id.py) alike.

LOG_FORMAT chooses:
- `json` (the stack's default): one JSON object a line, for a log collector
  (Loki, Elasticsearch, CloudWatch, `docker compose logs | jq`). Every line
  has the same keys, the schema nginx's access log has too
  (nginx/default.conf.template): FIELDS, null where a line has no value
  (a line written outside any request has no request_id), and whatever else
  the line carries (an exception's traceback in exc_info, an access log's
  bytes and user agent).
- `text` (runserver's and `make dev`'s default): a line for people to read.

python-json-logger writes the JSON; nothing here formats it by hand.
"""

import logging

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

LOG_FORMATS = ("json", "text")

# The schema: every line of nginx, Gunicorn, Django and Daphne has these keys.
# timestamp: ISO 8601, UTC; level; logger (nginx.access, gunicorn.access,
# daphne.access, django.request, apps.core.consumers, ...); message; then, for
# a line about a request: its request_id (X-Request-ID), method, path (without
# the query string), status, duration (seconds) and client (its address as
# nginx saw it).
FIELDS = (
    "timestamp",
    "level",
    "logger",
    "message",
    "request_id",
    "method",
    "path",
    "status",
    "duration",
    "client",
)
REQUEST_FIELDS = FIELDS[4:]


def formatter(log_format: str) -> logging.Formatter:
    """The formatter for LOG_FORMAT (logging.config's "()" factory calls it)."""
    if log_format == "json":
        return JsonFormatter(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
            defaults=dict.fromkeys(REQUEST_FIELDS),
            # django.request's `request` is an object, whose useful parts are
            # the request fields already; its status_code is the schema's status
            # (apps.core.request_id.RequestContextFilter).
            reserved_attrs=[*RESERVED_ATTRS, "request", "status_code"],
        )
    if log_format == "text":
        return TextFormatter(
            "%(asctime)s %(levelname)s %(name)s %(process)d %(request_id)s %(client)s %(message)s",
            defaults={"request_id": "-", "client": "-"},
        )
    raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")


# What a text line must not hold as it is: line breaks (str.splitlines' and
# a terminal's), other control characters, and the backslash that escapes
# them, as JSON escapes them.
_TEXT_ESCAPES = {
    **{code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))},
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
    ord("\\"): "\\\\",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


class TextFormatter(logging.Formatter):
    """One record, one line: what a client wrote (a path with an encoded
    newline, a header) becomes part of a line, never a forged line of its own.
    A traceback still follows on lines of its own, as people read it."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record).translate(_TEXT_ESCAPES)
