"""The demo through the whole stack: the page in a real browser (headless
Chromium) and with plain HTTP, the chat across Daphne processes, uploads
saved by Gunicorn and served back by nginx, and their checksums computed by
the worker and pushed to the page."""

import asyncio
import hashlib
import json
import os
import re
import threading
import time
import uuid

import pytest
from django.conf import settings
from playwright.sync_api import expect

from tests.stack import (
    console_errors,
    csrf_form,
    socket_on_each_replica,
    stack_database,
    static_urls,
)

pytestmark = pytest.mark.e2e


def new_room() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}"


def page_url(stack, room: str) -> str:
    return f"http://{stack.address}/?room={room}"


def visit_count(response) -> int:
    """The number the page shows in its visit counter."""
    assert response.status_code == 200, response.text
    match = re.search(r'id="visit-count"[^>]*>(\d+)<', response.text)
    assert match, "the page has no visit counter"
    return int(match[1])


def test_page_and_its_static_files(stack):
    response = stack.browser().get(stack.url("/"))
    assert response.status_code == 200
    assert 'id="chat-form"' in response.text
    urls = static_urls(response.text)
    assert len(urls) == 3  # icon, stylesheet, script
    assert all(stack.browser().get(stack.url(url)).status_code == 200 for url in urls)


def test_counter_rises_and_survives_a_restart_of_web(stack):
    browser = stack.browser()
    assert [visit_count(browser.get(stack.url("/"))) for _ in range(2)] == [1, 2]

    stack.restart("web")

    assert visit_count(browser.get(stack.url("/"))) == 3


def session_rows() -> int:
    with stack_database() as connection:
        row = connection.execute("SELECT count(*) FROM django_session").fetchone()
    assert row is not None
    return row[0]


def test_first_visits_are_counted_and_store_no_session(stack):
    # Clients that keep no cookie: each visit a first one, none of them a row.
    before = session_rows()
    for _ in range(3):
        response = stack.browser().get(stack.url("/"))
        assert visit_count(response) == 1
        assert "sessionid" not in response.cookies
    assert session_rows() == before


def test_counter_rises_on_reload_with_no_errors(stack, chromium):
    page = chromium.new_page()
    errors = console_errors(page)
    page.goto(page_url(stack, new_room()))
    assert page.text_content("#visit-count") == "1"
    page.reload()
    assert page.text_content("#visit-count") == "2"
    expect(page.locator("#chat-status")).to_have_text("connected")
    # A CSP violation, a missing file or a script error would be logged here.
    assert errors == []
    page.close()


def test_two_tabs_chat_with_each_other(stack, chromium):
    room = new_room()
    context = chromium.new_context()
    alice, bob = context.new_page(), context.new_page()
    for tab in (alice, bob):
        tab.goto(page_url(stack, room))
        expect(tab.locator("#chat-status")).to_have_text("connected")

    alice.fill("#chat-message", "hello from the first tab")
    alice.press("#chat-message", "Enter")
    expect(bob.locator("#chat-log")).to_contain_text("hello from the first tab")
    bob.fill("#chat-message", "and back from the second")
    bob.click("button[type=submit]")
    expect(alice.locator("#chat-log")).to_contain_text("and back from the second")
    assert alice.input_value("#chat-message") == ""  # sent, so cleared
    context.close()


async def test_chat_between_two_daphne_processes(stack):
    """Clients on different asgi replicas exchange messages: the group is in Redis."""
    path = f"/ws/chat/{new_room()}/"
    replicas, clients = await socket_on_each_replica(stack, path)
    assert len(replicas) == 2, "make test runs asgi with two replicas"

    try:
        for sender, receiver in ((clients[0], clients[1]), (clients[1], clients[0])):
            text = f"hello {uuid.uuid4().hex}"
            await sender.send(json.dumps({"message": text}))
            for connection in (receiver, sender):
                reply = json.loads(await asyncio.wait_for(connection.recv(), timeout=5))
                assert reply == {"message": text}
    finally:
        for connection in clients:
            await connection.close()


def upload(stack, browser, name: str, content: bytes):
    """Post a file with the page's upload form, as a browser would."""
    return browser.post(
        stack.url("/"),
        data=csrf_form(stack, browser, "/"),
        files={"file": (name, content)},
        headers={"Origin": stack.origin},
    )


def upload_links(html: str) -> dict[str, str]:
    """The page's list of uploads: URL by file name."""
    listed = re.search(r'<ul id="upload-list">(.*?)</ul>', html, re.S)
    assert listed is not None, "no list of uploads on the page"
    return {name: url for url, name in re.findall(r'<a href="([^"]+)">([^<]+)</a>', listed[1])}


def test_upload_through_nginx_and_download_it_back(stack):
    browser = stack.browser()
    content = f"uploaded {uuid.uuid4().hex}\n".encode()
    response = upload(stack, browser, "notes.txt", content)
    # Saved, then redirected to the page, which lists it.
    assert response.status_code == 200, response.text
    assert [r.status_code for r in response.history] == [302]
    url = upload_links(response.text)["notes.txt"]

    download = stack.browser().get(stack.url(url))  # anyone with the URL
    assert download.status_code == 200
    assert download.content == content
    assert download.headers["Content-Disposition"] == "attachment"
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in download.headers["Content-Security-Policy"]


def test_upload_over_the_limit_is_refused_by_nginx(stack):
    browser = stack.browser()
    name = f"big-{uuid.uuid4().hex}.bin"
    response = upload(stack, browser, name, b"x" * (settings.UPLOAD_MAX_BYTES + 1))
    assert response.status_code == 413
    assert "413 Request Entity Too Large" in response.text
    assert name not in browser.get(stack.url("/")).text


def web_setting(stack, name: str):
    """A setting as the stack's web has it (its environment, not the tests')."""
    code = (
        f"import django; django.setup()\nfrom django.conf import settings; print(settings.{name})"
    )
    return stack.run_python(stack.each("web")[0], code).strip()


def test_a_client_over_its_quota_gets_a_429_and_its_files_still_download(stack):
    quota = int(web_setting(stack, "DEMO_UPLOAD_QUOTA_BYTES"))
    # As large as nginx lets a body be, with room for the form around it.
    size = settings.UPLOAD_MAX_BYTES - 16 * 1024
    browser = stack.browser()
    kept = {}  # URL: content, of each file this test saw stored
    try:
        for _ in range(quota // size + 2):
            sent_at = time.monotonic()
            content = os.urandom(size)
            name = f"quota-{uuid.uuid4().hex}.bin"
            response = upload(stack, browser, name, content)
            if response.status_code != 200:
                break
            kept[upload_links(response.text)[name]] = content
            # nginx lets a client write 5 times a second, and answers the
            # sixth with a 429 of its own: not the one this test is after.
            time.sleep(max(0.0, 0.25 - (time.monotonic() - sent_at)))
        assert response.status_code == 429, response.text
        assert "as much as one visitor may keep here" in response.text
        assert name not in upload_links(response.text)
        assert kept, "no upload was stored before the quota was reached"
        for url, content in kept.items():
            download = stack.browser().get(stack.url(url))
            assert download.status_code == 200
            assert download.content == content
    finally:
        # Give this client (the tests' container) its room back, for the
        # tests that upload after this one; the files go with the expiry.
        with stack_database() as connection:
            connection.execute(
                "DELETE FROM demo_upload WHERE host(client) = %s", [stack.own_address()]
            )


def test_upload_in_a_browser_with_no_errors(stack, chromium):
    page = chromium.new_page()
    errors = console_errors(page)
    page.goto(page_url(stack, new_room()))
    page.set_input_files(
        "#upload-form input[type=file]",
        files=[{"name": "hello.txt", "mimeType": "text/plain", "buffer": b"hello"}],
    )
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#upload-list")).to_contain_text("hello.txt")
    # A CSP violation, a missing file or a script error would be logged here.
    assert errors == []
    page.close()


def test_an_upload_s_checksum_appears_without_a_reload(stack, chromium):
    """The whole background path: Gunicorn saves the file and enqueues the
    task, the worker reads the file from the media volume and computes its
    SHA-256, Redis and Daphne push it to the page. The worker is paused
    until the page's socket is open, so the checksum cannot come with the
    page itself: only the push can bring it."""
    name = f"{uuid.uuid4().hex}.bin"
    content = os.urandom(100_000)
    page = chromium.new_page()
    errors = console_errors(page)
    page.goto(page_url(stack, new_room()))
    with stack.frozen("worker"):
        page.set_input_files(
            "#upload-form input[type=file]",
            files=[{"name": name, "mimeType": "application/octet-stream", "buffer": content}],
        )
        page.click("#upload-form button[type=submit]")
        checksum = page.locator("#upload-list li", has_text=name).locator("code")
        expect(checksum).to_have_text("computing…")
        # Open only once the server has joined the page's groups.
        listed = page.locator("#upload-list")
        expect(listed).to_have_attribute("data-socket", "open", timeout=30_000)
        page.evaluate("() => { window.notReloaded = true; }")

    expect(checksum).to_have_text(hashlib.sha256(content).hexdigest(), timeout=30_000)
    assert page.evaluate("() => window.notReloaded") is True
    # Nothing left to wait for: the page has closed its socket.
    expect(listed).not_to_have_attribute("data-socket", "open")
    # A CSP violation, a missing file or a script error would be logged here.
    assert errors == []
    page.close()


# Records every status the chat box shows, so the retries can be read back.
RECORD_STATUSES = """() => {
    const status = document.getElementById("chat-status");
    window.statuses = [];
    new MutationObserver(() => window.statuses.push(status.textContent))
        .observe(status, {childList: true, characterData: true, subtree: true});
}"""


@pytest.mark.chaos
def test_page_chat_reconnects_with_back_off_after_daphne_restarts(stack, chromium):
    page = chromium.new_page()
    page.goto(page_url(stack, new_room()))
    expect(page.locator("#chat-status")).to_have_text("connected")
    page.evaluate(RECORD_STATUSES)

    # Both replicas at once: for a while there is no Daphne to reconnect to.
    restarts = [
        threading.Thread(target=c.restart, kwargs={"timeout": 30}) for c in stack.containers("asgi")
    ]
    for restart in restarts:
        restart.start()
    for restart in restarts:
        restart.join()
    expect(page.locator("#chat-status")).to_have_text("connected", timeout=60_000)

    delays = [
        float(match[1])
        for status in page.evaluate("() => window.statuses")
        if (match := re.match(r"disconnected, retrying in ([\d.]+) s", status))
    ]
    assert len(delays) >= 3, page.evaluate("() => window.statuses")
    assert delays[-1] > delays[0] * 2, delays  # backing off, not hammering
    page.fill("#chat-message", "back again")
    page.press("#chat-message", "Enter")
    expect(page.locator("#chat-log")).to_contain_text("back again")
    page.close()
    stack.wait_ready(timeout=90)
