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
        return logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s %(process)d %(request_id)s %(client)s %(message)s",
            defaults={"request_id": "-", "client": "-"},
        )
    raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
