"""The page in a real browser (headless Chromium) through nginx: what a visitor
sees, with the page's own script and the Content-Security-Policy in force."""

import uuid

import pytest
from playwright.sync_api import expect

from .conftest import chat_status, page_url

pytestmark = pytest.mark.e2e


def new_room() -> str:
    return f"page-{uuid.uuid4().hex[:12]}"


def test_counter_rises_on_reload_with_no_errors(stack, chromium):
    page = chromium.new_page()
    errors = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(page_url(stack, new_room()))
    assert page.text_content("#visit-count") == "1"
    page.reload()
    assert page.text_content("#visit-count") == "2"
    expect(page.locator("#chat-status")).to_have_text("connected")
    # A CSP violation, a missing file or a script error would be logged here.
    # (Chromium also notes that it ignores Cross-Origin-Opener-Policy on plain
    # HTTP to a host other than localhost, as the tests' "nginx" is.)
    errors = [e for e in errors if "Cross-Origin-Opener-Policy header has been ignored" not in e]
    assert errors == []
    page.close()


def test_two_tabs_chat_with_each_other(stack, chromium):
    room = new_room()
    context = chromium.new_context()
    alice, bob = context.new_page(), context.new_page()
    for tab in (alice, bob):
        tab.goto(page_url(stack, room))
        expect(tab.locator("#chat-status")).to_have_text("connected")
    assert chat_status(alice) == "connected"

    alice.fill("#chat-message", "hello from the first tab")
    alice.press("#chat-message", "Enter")
    expect(bob.locator("#chat-log")).to_contain_text("hello from the first tab")
    bob.fill("#chat-message", "and back from the second")
    bob.click("button[type=submit]")
    expect(alice.locator("#chat-log")).to_contain_text("and back from the second")
    assert alice.input_value("#chat-message") == ""  # sent, so cleared
    context.close()
