"""project/logs.py: one schema for every line, JSON or text as LOG_FORMAT says."""

import json
import logging
import re

import pytest

from project.logs import FIELDS, formatter


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
