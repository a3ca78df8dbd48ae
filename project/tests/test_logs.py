"""project/logs.py: one schema for every line, JSON or text as LOG_FORMAT says."""

import json
import logging
import re
import sys
from urllib.parse import quote

import pytest

from project.asgi import application
from project.logs import FIELDS, formatter
from tests.stack import Communicator


def formatted(log_format: str, **extra) -> str:
    line = logging.LogRecord("apps.orders", logging.WARNING, __file__, 1, "hi %s", ("you",), None)
    line.__dict__.update(extra)
    return formatter(log_format).format(line)


def test_json_lines_have_every_key_of_the_schema():
    outside = json.loads(formatted("json"))
    assert set(FIELDS) <= outside.keys()
    assert (outside["level"], outside["logger"]) == ("WARNING", "apps.orders")
    assert outside["message"] == "hi you"
    assert outside["request_id"] is None
    assert outside["timestamp"].endswith("+00:00")  # ISO 8601, UTC

    inside = json.loads(formatted("json", request_id="abc", status=404, close_code=4009))
    assert (inside["request_id"], inside["status"], inside["close_code"]) == ("abc", 404, 4009)


def test_django_s_request_object_is_left_out():
    # django.request's records carry the HttpRequest; its parts are fields already.
    line = json.loads(formatted("json", request=object(), status_code=404))
    assert "request" not in line and "status_code" not in line


def test_text_lines_are_for_people():
    assert re.search(r" WARNING apps\.orders \d+ - - hi you$", formatted("text"))
    assert " abc 192.0.2.1 hi you" in formatted("text", request_id="abc", client="192.0.2.1")


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="LOG_FORMAT must be one of json, text, not 'xml'"):
        formatter("xml")


async def test_a_client_cannot_write_a_text_line_of_its_own(caplog):
    # Daphne's access line holds the path, decoded: %0A is a newline in it.
    forged = "2026-01-01 00:00:00,000 CRITICAL django.security 1 - - forged"
    path = f"/ws/nothing%0A{quote(forged)}"
    await Communicator(application, path, headers=[(b"origin", b"http://localhost:8000")]).connect()
    [record] = [r for r in caplog.records if r.name == "daphne.access"]
    line = formatter("text").format(record)
    assert "\n" not in line
    assert line.endswith(f"WSREJECT /ws/nothing\\n{forged}")


def test_text_lines_escape_control_characters_and_keep_tracebacks_readable():
    assert formatted("text", msg="a\\b\r\x1b[31m\u2028", args=()).endswith(r"a\\b\r\x1b[31m\u2028")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert formatter("text").format(record).splitlines()[1] == "Traceback (most recent call last):"
