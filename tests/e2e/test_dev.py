"""`make dev`, as a developer uses it: started from a copy of the project, then
a new app, a page and its edits, each served on the next reload.

The copy lives in SCRATCH_DIR, a folder at the same path here and on the
Docker engine's machine, so the dev stack can mount it as it mounts a
checkout. Everything in it belongs to the folder's owner, as a checkout
belongs to its developer, and the dev stack runs as that user.
"""

import asyncio
import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import docker
import pytest
import requests
import websockets

from tests.stack import project_copy, wait_until

pytestmark = pytest.mark.e2e

# How long an edit may take to show. runserver notices a change within a
# second, and when it is to Python restarts in a few seconds (about twenty,
# seen on a machine loaded ten times over its cores). The bound says that
# nothing but saving is needed, with no rebuild and no restart by hand, on a
# machine however busy: it is no speed test.
EDIT_SHOWS_WITHIN = 60  # seconds


@dataclass
class DevStack:
    folder: Path  # the project's copy, mounted into the stack
    address: str  # nginx, host:port
    env: dict  # for `make` in the copy

    def get(self, path: str) -> requests.Response:
        url = f"http://{self.address}{path}"
        return requests.get(url, headers={"Host": "localhost"}, timeout=10)

    def make(self, *args: str) -> str:
        result = subprocess.run(
            ["make", *args], cwd=self.folder, env=self.env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def write(self, path: str, text: str) -> None:
        target = self.folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def edit(self, path: str, text: str) -> None:
        """Save a change as a developer would, once web's runserver can see it.

        runserver's StatReloader looks at the files once a second, and keeps
        the time it first sees a file at; only a later change reloads. So a
        file saved between a restart and the new server's first looks is
        never noticed (Django's own way; a developer saves again). Wait for
        two looks since web's server last started, then save."""
        web = docker.from_env(version="auto").containers.list(
            filters={"label": [f"com.docker.compose.project={self.folder.name}-dev",
                               "com.docker.compose.service=web"]}
        )[0]  # fmt: skip

        def watching_since() -> float | None:
            starts = [
                line.split(" ", 1)[0]
                for line in web.logs(timestamps=True).decode(errors="replace").splitlines()
                if "Watching for file changes" in line
            ]
            return datetime.fromisoformat(starts[-1]).timestamp() if starts else None

        deadline = time.monotonic() + EDIT_SHOWS_WITHIN
        while (since := watching_since()) is None or time.time() - since < 2.5:
            assert time.monotonic() < deadline, "web's runserver never started watching"
            time.sleep(0.25)
        self.write(path, text)


@pytest.fixture(scope="module")
def dev_stack(stack):
    folder = project_copy()
    owner = folder.stat()
    env = {
        **os.environ,
        "DEV_USER": f"{owner.st_uid}:{owner.st_gid}",
        "HTTP_PORT": "127.0.0.1:0",
        "MAIL_PORT": "127.0.0.1:0",
    }
    project = f"{folder.name}-dev"
    log = (folder / "make-dev.log").open("w")
    dev = subprocess.Popen(
        ["make", "dev"], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    client = docker.from_env(version="auto")
    network = None
    try:
        # nginx's network (docker-compose.yml): all these tests reach.
        network = wait_for_network(client, f"{project}_front", dev, folder)
        network.connect(client.containers.get(socket.gethostname()))

        dev_stack = DevStack(folder=folder, address="", env=env)

        def ready() -> bool:
            nginx = client.containers.list(
                filters={"label": [f"com.docker.compose.project={project}",
                                   "com.docker.compose.service=nginx"]}
            )  # fmt: skip
            if not nginx:  # not made yet
                return False
            networks = nginx[0].attrs["NetworkSettings"]["Networks"]
            dev_stack.address = f"{networks[network.name]['IPAddress']}:8080"
            return dev_stack.get("/readyz").status_code == 200

        wait_until(ready, timeout=300, what="the dev stack ready through nginx")
        yield dev_stack
    finally:
        if network is not None:
            network.disconnect(socket.gethostname(), force=True)
        subprocess.run(
            ["docker", "compose", "--project-name", project, "--profile", "mail-catcher",
             "--file", "docker-compose.yml",
             "--file", "docker-compose.dev.yml", "down", "--volumes", "--rmi", "local",
             "--timeout", "5"],
            cwd=folder, env=env, capture_output=True, timeout=120,
        )  # fmt: skip
        dev.wait(timeout=60)
        log.close()
        shutil.rmtree(folder)


def wait_for_network(client, name: str, dev: subprocess.Popen, folder: Path):
    deadline = time.monotonic() + 300
    while True:
        found = client.networks.list(names=[name])
        if found:
            return found[0]
        if dev.poll() is not None or time.monotonic() > deadline:
            log = (folder / "make-dev.log").read_text()
            raise AssertionError(f"make dev did not start:\n{log}")
        time.sleep(1)


VIEWS = """from django.shortcuts import render


def hello(request):
    return render(request, "probe/hello.html", {{"said_by": "{said_by}"}})
"""
URLS = """from django.urls import path

from . import views

urlpatterns = [path("", views.hello)]
"""
TEMPLATE = """{{% extends "base.html" %}}
{{% block content %}}<p id="said">{text}, said by {{{{ said_by }}}}</p>{{% endblock %}}
"""


def test_debug_pages_are_on(dev_stack):
    response = dev_stack.get("/no-such-page/")
    assert response.status_code == 404
    assert "Using the URLconf defined in" in response.text  # Django's debug 404


def test_a_new_app_and_each_edit_show_on_the_next_reload(dev_stack):
    # A new app, as docs/development.md makes one, with a page.
    assert "apps.probe" in dev_stack.make("app", "NAME=probe")
    dev_stack.write("apps/probe/views.py", VIEWS.format(said_by="the first view"))
    dev_stack.write("apps/probe/urls.py", URLS)
    dev_stack.write("apps/probe/templates/probe/hello.html", TEMPLATE.format(text="hello"))
    dev_stack.write("apps/probe/static/probe/probe.css", "/* first */\n")
    urls = dev_stack.folder / "project" / "urls.py"
    text = urls.read_text().replace("import path", "import include, path")
    urls.write_text(text.replace(
        '    path("admin/", admin.site.urls),\n',
        '    path("admin/", admin.site.urls),\n    path("probe/", include("apps.probe.urls")),\n',
    ))  # fmt: skip

    def shows(path: str, text: str):
        return lambda: text in dev_stack.get(path).text

    wait_until(
        shows("/probe/", "hello, said by the first view"),
        timeout=EDIT_SHOWS_WITHIN,
        what="the new page",
    )

    # A view, a template and a static file, each edited: seen on the next
    # reload. The view first: runserver finds an app's templates/ and static/
    # folders when it starts, and this one may have started while they were
    # being written (Django's own way, as docs/development.md says); the
    # view's edit restarts it.
    dev_stack.edit("apps/probe/views.py", VIEWS.format(said_by="the second view"))
    wait_until(
        shows("/probe/", "hello, said by the second view"),
        timeout=EDIT_SHOWS_WITHIN,
        what="the edited view",
    )
    dev_stack.edit("apps/probe/templates/probe/hello.html", TEMPLATE.format(text="hi again"))
    wait_until(
        shows("/probe/", "hi again, said by the second view"),
        timeout=EDIT_SHOWS_WITHIN,
        what="the edited template",
    )
    assert dev_stack.get("/static/probe/probe.css").text == "/* first */\n"
    dev_stack.edit("apps/probe/static/probe/probe.css", "/* second */\n")
    wait_until(
        shows("/static/probe/probe.css", "/* second */"),
        timeout=EDIT_SHOWS_WITHIN,
        what="the edited static file",
    )


def test_websockets_are_served_through_nginx(dev_stack):
    async def ping():
        host, port = dev_stack.address.split(":")
        async with websockets.connect(
            "ws://localhost/ws/ping/", host=host, port=int(port), origin="http://localhost"
        ) as connection:
            await connection.send(json.dumps({"ping": "dev"}))
            return json.loads(await asyncio.wait_for(connection.recv(), 5))

    # asgi's runserver restarts whenever a Python file changes, as the test
    # before does: nginx answers 502 until it is back. Wait for it.
    deadline = time.monotonic() + EDIT_SHOWS_WITHIN
    while True:
        try:
            reply = asyncio.run(ping())
            break
        except (OSError, TimeoutError, websockets.WebSocketException):
            assert time.monotonic() < deadline, "asgi did not answer through nginx"
            time.sleep(0.5)
    assert reply == {"pong": "dev"}
