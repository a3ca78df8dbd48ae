"""The running compose stack, reached through nginx as a browser would: a pytest
plugin (conftest.py registers it), so that every app's tests can use it; and
the toolkit an app's unit tests share (Communicator, for its consumers).

`make test` starts the stack and runs the tests in a container on its
network, with STACK_ADDRESS (where nginx listens, from there) and STACK_ORIGIN
(the address a browser on the host uses, http://localhost:8000). Requests go to
the first and carry the Host and Origin of the second.
"""

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import docker
import psycopg
import pytest
import requests
import websockets
from channels.testing import WebsocketCommunicator


class Browser(requests.Session):
    """requests' Session, with a timeout on every request unless one is given:
    requests waits for ever by default, and a server that never answers
    must fail a test, not hang it."""

    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", 30)
        return super().request(*args, **kwargs)


def wait_until(predicate, *, timeout: float, what: str, interval: float = 0.2):
    """predicate()'s first true value, asked every `interval` seconds: each
    state a test waits for is polled, never slept for. An exception counts as
    "not yet" (a server restarting refuses connections); after `timeout`, an
    AssertionError names `what`, with the last exception as its cause."""
    deadline = time.monotonic() + timeout
    error = None
    while True:
        try:
            if value := predicate():
                return value
        except Exception as raised:
            error = raised
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s") from error
        time.sleep(interval)


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
        session = Browser()
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

    def ws_connect(self, path: str = "/ws/ping/", **options):
        """A WebSocket through nginx, as the site's own page would open it."""
        return websockets.connect(self.ws_url(path), **self.ws_connect_args(), **options)

    def containers(self, service: str, *, exited: bool = False) -> list:
        """The service's running containers; with `exited`, those that have
        stopped too (the one-shot services, secrets and migrate, exit once
        done). Compose's own alone (oneoff=False): a container a test makes
        from a service's image inherits the image's project and service
        labels, and would otherwise be counted as one of the service's."""
        return self.docker.containers.list(
            all=exited,
            filters={
                "label": [
                    f"com.docker.compose.project={self.project}",
                    f"com.docker.compose.service={service}",
                    "com.docker.compose.oneoff=False",
                ]
            },
        )

    def each(self, service: str, *, exited: bool = False) -> list:
        """containers(), for a check of every one of them: one at least, or
        the check would pass on none."""
        found = self.containers(service, exited=exited)
        assert found, f"the stack has no {service} container"
        return found

    def address_of(self, container, *, network: str = "back") -> str:
        """The container's address on one of the stack's networks (docker-compose.yml):
        `back` holds every service but nginx, `front` nginx, web and asgi."""
        container.reload()
        networks = container.attrs["NetworkSettings"]["Networks"]
        return networks[f"{self.project}_{network}"]["IPAddress"]

    def own_address(self) -> str:
        """This (the tests') container's address as nginx sees it: on `front`."""
        return self.address_of(self.docker.containers.get(socket.gethostname()), network="front")

    def logs(self, service: str, *, since: float | None = None) -> str:
        """The logs of a service's containers, since a time.time() if given."""
        options = {} if since is None else {"since": int(since)}
        return "".join(c.logs(**options).decode(errors="replace") for c in self.containers(service))

    def log_records(
        self,
        service: str,
        *,
        since: float | None = None,
        until=bool,
        timeout: float = 10,
        **fields,
    ) -> list[dict]:
        """A service's JSON log lines (LOG_FORMAT=json) whose keys have the
        values given in `fields`, parsed, waiting up to `timeout` until
        until(records) holds (by default: there is one). Lines that are not
        JSON (nginx's error log) are left out."""
        deadline = time.monotonic() + timeout
        while True:
            records = []
            for line in self.logs(service, since=since).splitlines():
                if not line.startswith("{"):
                    continue
                record = json.loads(line)
                if all(record.get(name) == value for name, value in fields.items()):
                    records.append(record)
            if until(records) or time.monotonic() > deadline:
                return records
            time.sleep(0.1)

    def run_python(self, container, code: str) -> str:
        """Run Python in a container of the stack, as its own user: what it
        printed on its standard output (log lines go to standard error)."""
        result = container.exec_run(["python", "-c", code], demux=True)
        stdout, stderr = (part.decode(errors="replace") if part else "" for part in result.output)
        assert result.exit_code == 0, stdout + stderr
        return stdout

    def manage(self, *args: str, environment: dict | None = None) -> str:
        """manage.py in a web container, as the app's own user."""
        web = self.containers("web")[0]
        result = web.exec_run(["python", "manage.py", *args], environment=environment)
        assert result.exit_code == 0, result.output.decode()
        return result.output.decode()

    @contextlib.contextmanager
    def frozen(self, service: str):
        """Every container of the service frozen (`docker pause`) for the
        block: its sockets stay open and accept connections that are then
        never answered, as a server that hangs.

        The cgroup v1 freezer gives up when a process stays in uninterruptible
        I/O for its brief spin (a fifth of a second or so, runc's loop), as one
        may on a loaded machine: runc thaws the container again and reports
        "unable to freeze". Nothing is frozen then, so it is asked again, as
        runc's own loop does, until the freeze holds."""
        containers = self.each(service)
        try:
            for container in containers:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        container.pause()
                        break
                    except docker.errors.APIError as error:
                        if "unable to freeze" not in str(error) or time.monotonic() > deadline:
                            raise
                        time.sleep(0.1)
            yield containers
        finally:
            for container in containers:
                container.reload()
                if container.status == "paused":
                    container.unpause()

    def restart(self, service: str) -> None:
        """`docker compose restart <service>`, then wait until nginx serves again."""
        for container in self.containers(service):
            container.restart(timeout=30)
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        wait_until(
            lambda: self.browser().get(self.url("/readyz"), timeout=5).status_code == 200,
            timeout=timeout,
            interval=0.5,
            what="the stack ready (/readyz through nginx)",
        )


@pytest.fixture(scope="session")
def stack() -> Stack:
    address, origin = os.environ.get("STACK_ADDRESS"), os.environ.get("STACK_ORIGIN")
    if not (address and origin):
        pytest.skip("end-to-end tests run against the compose stack: `make test`")
    stack = Stack(address=address, origin=origin)
    stack.wait_ready()
    return stack


# What every end-to-end test leaves as it found it, so that each runs alone as
# it runs in the suite, in any order (`pytest -p randomly`).
LONG_RUNNING_SERVICES = ("nginx", "web", "asgi", "worker", "redis", "db")


@pytest.fixture(autouse=True)
def leaves_the_stack_as_found(request):
    """After each end-to-end test: every service still runs, and no client
    is locked out of signing in (a test that locks one out lifts it)."""
    if request.node.get_closest_marker("e2e") is None:
        yield
        return
    stack = request.getfixturevalue("stack")
    yield
    stopped = [service for service in LONG_RUNNING_SERVICES if not stack.containers(service)]
    assert not stopped, f"the test left {', '.join(stopped)} stopped"
    # django-axes' lockout, as it counts it: 10 failures within the cool-off
    # (15 minutes), from one address or at one account (AXES_* in base.py).
    with stack_database() as database:
        locked = database.execute(
            "SELECT key FROM ("
            "  SELECT host(ip_address) AS key, failures_since_start FROM axes_accessattempt"
            "   WHERE attempt_time > now() - interval '15 minutes'"
            "  UNION ALL"
            "  SELECT username, failures_since_start FROM axes_accessattempt"
            "   WHERE attempt_time > now() - interval '15 minutes'"
            ") AS failures GROUP BY key HAVING sum(failures_since_start) >= 10"
        ).fetchall()
    assert not locked, f"the test left {locked} locked out (manage.py axes_reset lifts it)"


class Load:
    """Requests from background threads, one after another in each, until
    the block ends: `with Load(stack) as load: ...`, then load.results holds
    (start time, status code or exception name) for every request.

    Each GET thread is a visitor of its own, from `browser()` (a new one by
    default), and keeps its connection open between requests. It retries a
    GET once when the server closed the connection just as it was sent, as
    browsers do (RFC 9112, section 9.3.1): nginx closes idle connections when
    it reloads. Every such retry is counted (load.retries), for the test to
    hold against the reloads that explain it. An answer is never retried,
    whatever its status.

    With `posts`, one more visitor POSTs the admin's login form, empty (no
    failed login for django-axes to count; CSRF, the session and PostgreSQL
    still used), three times a second (under nginx's limit on writes): a POST
    is never retried, by the client nor by nginx, so a request dropped on
    the way shows as a failure."""

    def __init__(
        self,
        stack: Stack,
        *,
        path: str = "/admin/login/",
        threads: int = 4,
        browser=None,
        posts: bool = False,
    ):
        self.stack, self.path, self.threads, self.posts = stack, path, threads, posts
        self.new_browser = browser or stack.browser
        self.results: list[tuple[float, int | str]] = []
        self.retries: list[float] = []
        self.posted = 0
        self._stop = threading.Event()

    def _run(self):
        browser = self.new_browser()
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                try:
                    answer = browser.get(
                        self.stack.url(self.path), timeout=30, allow_redirects=False
                    )
                except requests.ConnectionError:
                    # Closed as it was sent (a reload): once more, counted.
                    self.retries.append(time.monotonic())
                    answer = browser.get(
                        self.stack.url(self.path), timeout=30, allow_redirects=False
                    )
                outcome: int | str = answer.status_code
            except requests.RequestException as error:
                outcome = type(error).__name__
            self.results.append((started, outcome))

    def _post(self):
        browser = self.stack.browser()
        form = csrf_form(self.stack, browser) | {"username": "", "password": ""}
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                outcome: int | str = browser.post(
                    self.stack.url("/admin/login/"),
                    data=form,
                    headers={"Origin": self.stack.origin},
                    timeout=30,
                    allow_redirects=False,
                ).status_code
            except requests.RequestException as error:
                outcome = type(error).__name__
            self.results.append((started, outcome))
            self.posted += 1
            self._stop.wait(0.3)

    def __enter__(self):
        self._workers = [threading.Thread(target=self._run) for _ in range(self.threads)]
        if self.posts:
            self._workers.append(threading.Thread(target=self._post))
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
    from playwright.sync_api import expect, sync_playwright

    # expect()'s default wait, 5 s, is short for a loaded two-core machine
    # (a WebSocket connecting, a worker's result pushed to the page); what
    # comes, comes in well under a second.
    expect.set_options(timeout=15_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            # As root in a container, without Chromium's own sandbox; and
            # without the background traffic a closed network refuses.
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


def console_errors(page) -> list[str]:
    """Collects from now on what a page's console shows as errors: failed
    requests (with their URL, which the console's own line lacks), uncaught
    exceptions, and anything else logged as an error, such as what the
    Content-Security-Policy refused. (Chromium also notes that it ignores
    Cross-Origin-Opener-Policy on plain HTTP to a host other than localhost,
    as the tests' "nginx" is: not an error of the site's.)"""
    errors: list[str] = []

    def console(message):
        text = message.text
        failed_request = text.startswith("Failed to load resource")  # see response()
        if message.type == "error" and not failed_request and "Cross-Origin" not in text:
            errors.append(text)

    def response(answer):
        if answer.status >= 400:
            errors.append(f"{answer.status} {answer.url}")

    page.on("console", console)
    page.on("response", response)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def project_copy() -> Path:
    """A copy of the project, as the test image holds it, for a stack of its
    own (`make dev`, HTTPS). It lives in SCRATCH_DIR, a folder at the same path
    here and where the Docker engine runs, so that stack can mount it as it
    would a checkout; it belongs to the folder's owner, as a checkout belongs
    to its developer."""
    scratch = os.environ.get("SCRATCH_DIR")
    if not scratch:
        pytest.skip("needs SCRATCH_DIR, which `make test` sets")
    copy = Path(scratch) / f"copy-{uuid.uuid4().hex[:8]}"
    shutil.copytree(
        Path(__file__).resolve().parent.parent,
        copy,
        ignore=shutil.ignore_patterns("staticfiles", "__pycache__", ".pytest_cache"),
    )
    owner = Path(scratch).stat()
    for path in [copy, *copy.rglob("*")]:
        os.lchown(path, owner.st_uid, owner.st_gid)
    return copy


# --- The stack's own database ----------------------------------------------------


def stack_database(**options) -> psycopg.Connection:
    """A connection to the stack's own database (the unit tests use a copy), as
    the tests container's DATABASE_URL and DATABASE_PASSWORD_FILE name it: the
    superuser, with the variables the app's containers have (docker-compose.yml)."""
    password = Path(os.environ["DATABASE_PASSWORD_FILE"]).read_text().strip()
    return psycopg.connect(os.environ["DATABASE_URL"], password=password, **options)


# --- What a browser reads off the pages ------------------------------------------


def csrf_form(stack: Stack, browser, path: str = "/admin/login/") -> dict:
    """The CSRF field of the form at `path`, as the browser got it."""
    page = browser.get(stack.url(path))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
    return {"csrfmiddlewaretoken": token}


def static_urls(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/static/[^"]+)"', html)


# --- Accounts: Django's admin, which every fork has -------------------------------


def user_create(stack: Stack) -> tuple[str, str]:
    """A new superuser, made with manage.py in a web container, as the README
    shows: (email address, password)."""
    email, password = f"user-{uuid.uuid4().hex[:8]}@example.com", uuid.uuid4().hex
    stack.manage(
        "createsuperuser",
        "--noinput",
        environment={"DJANGO_SUPERUSER_EMAIL": email, "DJANGO_SUPERUSER_PASSWORD": password},
    )
    return email, password


def log_in(stack: Stack, browser, email: str, password: str) -> requests.Response:
    """The admin's sign-in form (its field is `username`; the account's name
    is its email address)."""
    return browser.post(
        stack.url("/admin/login/?next=/admin/"),
        data=csrf_form(stack, browser) | {"username": email, "password": password},
        headers={"Origin": stack.origin},
    )


def logged_in_browser(stack: Stack) -> requests.Session:
    """A visitor logged in to the admin, as a new superuser."""
    browser = stack.browser()
    log_in(stack, browser, *user_create(stack))
    assert is_logged_in(stack, browser)
    return browser


def is_logged_in(stack: Stack, browser) -> bool:
    return browser.get(stack.url("/admin/"), allow_redirects=False).status_code == 200


def log_out(stack: Stack, browser, **options) -> requests.Response:
    return browser.post(
        stack.url("/admin/logout/"),
        data=csrf_form(stack, browser, "/admin/"),
        headers={"Origin": stack.origin},
        **options,
    )


# --- Mail, as the stack's mail catcher received it --------------------------------


def mail_received(to: str, *, timeout: float = 30, count: int = 1) -> list[dict]:
    """The messages MailDev (the `mail` service) holds for `to`, oldest first,
    waiting up to `timeout` for `count` of them: the worker sends mail, so it
    arrives a moment after the request that asked for it."""
    deadline = time.monotonic() + timeout
    while True:
        messages = requests.get(f"{os.environ['MAIL_CATCHER_URL']}/email", timeout=5).json()
        mine = [m for m in messages if any(a["address"] == to for a in m["to"])]
        if len(mine) >= count or time.monotonic() > deadline:
            return mine
        time.sleep(0.2)


def link_in(text: str, path_prefix: str) -> str:
    """The path of the first link in a mail's text that starts with `path_prefix`
    (the unit tests read Django's outbox with it too)."""
    found = re.search(rf"https?://[^/\s]+({re.escape(path_prefix)}\S*)", text)
    assert found, f"no link to {path_prefix} in: {text}"
    return found[1]


# --- WebSockets -----------------------------------------------------------------


async def ping(connection, payload=None, *, timeout: float = 5):
    """Send {"ping": payload} and return the reply (/ws/ping/ answers with
    {"pong": payload}, through the channel layer)."""
    payload = payload if payload is not None else uuid.uuid4().hex
    await connection.send(json.dumps({"ping": payload}))
    return json.loads(await asyncio.wait_for(connection.recv(), timeout))


async def socket_on_each_replica(stack: Stack, path: str = "/ws/ping/") -> tuple[list, list]:
    """A WebSocket through nginx on each asgi replica: (replicas, sockets), in
    the same order. nginx picks the replica, so this connects until each has
    one, telling them apart by the handshake each replica logs."""
    replicas = stack.containers("asgi")

    def handshakes() -> list[int]:
        return [r.logs().decode(errors="replace").count(f"WSCONNECT {path}") for r in replicas]

    sockets: dict[int, object] = {}
    for _ in range(40):
        before = handshakes()
        connection = await stack.ws_connect(path)
        deadline = time.monotonic() + 30
        while (after := handshakes()) == before:  # logged just after the handshake
            assert time.monotonic() < deadline, "no replica logged the handshake"
            await asyncio.sleep(0.05)
        landed = next(i for i, (a, b) in enumerate(zip(after, before, strict=True)) if a > b)
        if landed in sockets:
            await connection.close()
        else:
            sockets[landed] = connection
        if len(sockets) == len(replicas):
            return replicas, [sockets[i] for i in range(len(replicas))]
    for connection in sockets.values():
        await connection.close()
    raise AssertionError("nginx never spread connections over every replica")


# --- Consumers' unit tests: a WebSocket client without the stack ------------------

# How long a reply, a handshake or a close may take. channels' default, 1 s,
# is short on a loaded two-core machine, where each goes through Redis: a
# disconnect that overran it was cancelled before the consumer gave back its
# client's budget, and a later test met it. What comes does so in
# milliseconds, so a longer wait slows no passing test.
COMMUNICATOR_TIMEOUT = 5


class Communicator(WebsocketCommunicator):
    """channels' WebsocketCommunicator, with COMMUNICATOR_TIMEOUT as every wait's default.
    receive_nothing() keeps its own: it waits for what should not come."""

    async def connect(self, timeout=COMMUNICATOR_TIMEOUT):
        return await super().connect(timeout)

    async def disconnect(self, code=1000, timeout=COMMUNICATOR_TIMEOUT):
        return await super().disconnect(code, timeout)

    async def receive_from(self, timeout=COMMUNICATOR_TIMEOUT):
        return await super().receive_from(timeout)

    async def receive_json_from(self, timeout=COMMUNICATOR_TIMEOUT):
        return await super().receive_json_from(timeout)

    async def receive_output(self, timeout=COMMUNICATOR_TIMEOUT):
        return await super().receive_output(timeout)

    async def wait(self, timeout=COMMUNICATOR_TIMEOUT):
        return await super().wait(timeout)
