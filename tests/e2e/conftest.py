"""The running compose stack, reached through nginx as a browser would.

`make test` starts the stack and runs these tests in a container on its
network, with STACK_ADDRESS (where nginx listens, from there) and STACK_ORIGIN
(the address a browser on the host uses, http://localhost:8000). Requests go to
the first and carry the Host and Origin of the second.
"""

import os
import socket
import time
from urllib.parse import urlsplit

import docker
import pytest
import requests


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
