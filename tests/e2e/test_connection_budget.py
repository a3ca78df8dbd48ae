"""The connection budget (deploy/kubernetes/README.md#the-connection-budget)
under load, on a PostgreSQL that has room for 40 connections: web scaled to
three replicas (fifteen Gunicorn workers, sixty threads: without the pool,
sixty connections at the most), asgi at two, and more concurrent requests
that read the database than there are connections. Each process keeps to
its pool, so no request meets PostgreSQL's "too many clients" or any other
5xx. With DATABASE_POOL_SIZE=0 (no pool) the same test fails.

Slow (a replica to start), so `make chaos` runs it."""

import collections
import contextlib
import os
import re
import subprocess
import time

import pytest

from tests.stack import Load, logged_in_browser, stack_database

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

# The room left on the server: as a PostgreSQL with max_connections=40,
# whose superuser_reserved_connections (3) the app may not take either.
ROOM = 40
WEB_REPLICAS = 3
CLIENTS = 80


class Replica:
    """A web replica, straight rather than through nginx, which lets one
    client have 20 requests at a time (nginx/snippets/site.conf): Load's
    `stack`, for the requests of its threads."""

    def __init__(self, stack, container):
        self.address = stack.address_of(container, network="front")

    def url(self, path: str) -> str:
        return f"http://{self.address}:8000{path}"


def app_connections(database) -> int:
    return database.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'"
    ).fetchone()[0]


def test_more_clients_than_connections_get_no_5xx(stack):
    compose = ["docker", "compose", "--project-name", stack.project]
    before = {c.id for c in stack.containers("web")}
    subprocess.run(
        [
            *compose,
            *("up", "--detach", "--no-deps", "--no-recreate", "--wait"),
            *("--scale", f"web={WEB_REPLICAS}", "web"),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "COMPOSE_PROFILES": ""},
        timeout=180,
    )
    added = [c for c in stack.containers("web") if c.id not in before]
    held = []
    try:
        # PostgreSQL's room cut down to ROOM: the rest taken by idle
        # connections of the superuser (the tests'), which count as any other.
        with stack_database(autocommit=True) as database:
            limit = int(database.execute("SHOW max_connections").fetchone()[0])
            taken = database.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
            ).fetchone()[0]
            held = [stack_database(autocommit=True) for _ in range(limit - ROOM - taken)]
            browser = logged_in_browser(stack)
            cookie = "; ".join(f"{c.name}={c.value}" for c in browser.cookies)

            def visitor():
                copy = stack.browser()
                copy.headers["Cookie"] = cookie
                return copy

            replicas = [Replica(stack, container) for container in stack.containers("web")]
            assert len(replicas) == WEB_REPLICAS
            for replica in replicas:
                answer = visitor().get(replica.url("/admin/"), allow_redirects=False)
                assert answer.status_code == 200, answer.status_code

            started = time.time()
            peak = 0
            loads = [
                Load(replica, path="/admin/", threads=CLIENTS // WEB_REPLICAS, browser=visitor)
                for replica in replicas
            ]
            with contextlib.ExitStack() as running:
                for load in loads:
                    running.enter_context(load)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    peak = max(peak, app_connections(database))
                    time.sleep(0.2)
        refused = [
            line
            for line in stack.logs("db", since=started).splitlines()
            if re.search("too many clients|remaining connection slots", line)
        ]
        results = [result for load in loads for result in load.results]
        failures = [result for load in loads for result in load.failures()]
        outcomes = collections.Counter(outcome for _, outcome in results)
        print(f"{len(results)} requests, {dict(outcomes)}, app connections at the most {peak}")
        assert not refused, refused[:3]
        assert failures == [], outcomes
        assert len(results) > CLIENTS * 5
        assert peak <= ROOM - 3
    finally:
        for connection in held:
            connection.close()
        for container in added:
            container.stop(timeout=30)
            container.remove()
        stack.wait_ready()
