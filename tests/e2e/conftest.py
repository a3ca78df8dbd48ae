"""The running compose stack, reached through nginx as a browser would.

`make test` starts the stack and runs these tests in a container on its
network, with STACK_ADDRESS (where nginx listens, from there) and STACK_ORIGIN
(the address a browser on the host uses, http://localhost:8000). Requests go to
the first and carry the Host and Origin of the second.
"""

import os
import re
import socket
import threading
import time
from urllib.parse import urlsplit

import docker
import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry


class Stack:
    def __init__(self, *, address: str, origin: str):
        self.address = address  # host:port of nginx
        self.origin = origin  # what the browser's address bar says
        self.host = urlsplit(origin).netloc
        self.docker = docker.from_env(version="auto")
        # The tests run in a container of the stack's own compose project.
        me = self.docker.containers.get(socket.gethostname())
        self.project = me.labels["com.docker.compose.project"]

    def browser(self) -> requests.Session:
        """A new visitor: a cookie jar, and the Host header of the origin."""
        session = requests.Session()
        session.headers["Host"] = self.host
        return session

    def url(self, path: str) -> str:
        return f"http://{self.address}{path}"

    def ws_url(self, path: str) -> str:
        """The URL the page's JavaScript opens; connect it to `address` with
        websockets' host/port arguments (see ws_connect_args)."""
        return f"ws://{self.host}{path}"

    def ws_connect_args(self) -> dict:
        host, _, port = self.address.partition(":")
        return {"host": host, "port": int(port or 80), "origin": self.origin}

    def containers(self, service: str) -> list:
        return self.docker.containers.list(
            filters={
                "label": [
                    f"com.docker.compose.project={self.project}",
                    f"com.docker.compose.service={service}",
                ]
            }
        )

    def address_of(self, container) -> str:
        container.reload()
        return next(iter(container.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]

    def run_python(self, container, code: str) -> str:
        """Run Python in a container of the stack, as its own user."""
        result = container.exec_run(["python", "-c", code])
        assert result.exit_code == 0, result.output.decode()
        return result.output.decode()

    def restart(self, service: str) -> None:
        """`docker compose restart <service>`, then wait until nginx serves again."""
        for container in self.containers(service):
            container.restart(timeout=30)
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.browser().get(self.url("/readyz"), timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the stack was not ready within {timeout} s")
            time.sleep(0.5)


@pytest.fixture(scope="session")
def stack() -> Stack:
    address, origin = os.environ.get("STACK_ADDRESS"), os.environ.get("STACK_ORIGIN")
    if not (address and origin):
        pytest.skip("end-to-end tests run against the compose stack: `make test`")
    stack = Stack(address=address, origin=origin)
    stack.wait_ready()
    return stack


class Load:
    """GET requests from background threads, one after another in each, until
    the block ends: `with Load(stack) as load: ...`, then load.results holds
    (start time, status code or exception name) for every request.

    Each thread keeps its connection open between requests, and retries once
    when the server closed it just as a request was sent, as browsers do
    (RFC 9112, section 9.3.1): nginx closes idle connections when it reloads.
    An answer is never retried, whatever its status."""

    def __init__(self, stack: Stack, *, path: str = "/", threads: int = 4):
        self.stack, self.path, self.threads = stack, path, threads
        self.results: list[tuple[float, int | str]] = []
        self._stop = threading.Event()

    def _run(self):
        browser = self.stack.browser()
        retry_once = Retry(
            total=1, connect=1, read=1, status=0, other=0, respect_retry_after_header=False
        )
        browser.mount("http://", HTTPAdapter(max_retries=retry_once))
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                outcome = browser.get(self.stack.url(self.path), timeout=30).status_code
            except requests.RequestException as error:
                outcome = type(error).__name__
            self.results.append((started, outcome))

    def __enter__(self):
        self._workers = [threading.Thread(target=self._run) for _ in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        for worker in self._workers:
            worker.join()

    def failures(self, *, since: float = 0.0) -> list:
        return [r for r in self.results if r[0] >= since and r[1] != 200]


@pytest.fixture
def chromium():
    """Debian's Chromium, headless, driven by Playwright. It reaches nginx by
    its service name, which the test stack allows as a host (see Makefile).
    One per test: Playwright's synchronous API keeps an event loop running
    while it is open, and the asyncio tests need theirs."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            # As root in a container, without Chromium's own sandbox; and
            # without the background traffic a closed network refuses.
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


def page_url(stack: Stack, room: str) -> str:
    return f"http://{stack.address}/?room={room}"


def chat_status(page) -> str:
    return page.text_content("#chat-status")


# --- What a browser reads off the pages ------------------------------------------


def visit_count(response) -> int:
    """The number the page shows in its visit counter."""
    assert response.status_code == 200, response.text
    match = re.search(r'id="visit-count"[^>]*>(\d+)<', response.text)
    assert match, "the page has no visit counter"
    return int(match[1])


def csrf_form(stack: Stack, browser, path: str = "/admin/login/") -> dict:
    """The CSRF field of the form at `path`, as the browser got it."""
    page = browser.get(stack.url(path))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
    return {"csrfmiddlewaretoken": token}
