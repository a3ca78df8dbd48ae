"""nginx's processes fit its container (nginx/20-processes.envsh): one worker
per CPU of its limit, no more descriptors than it is given, and no old worker
left behind by a reload."""

import asyncio
import math
import re
import time
from datetime import datetime

import pytest

pytestmark = pytest.mark.e2e

# A line of nginx's error log at level alert or emerg: "2026/01/31 12:00:00 [alert] ...".
ALERT_OR_EMERG = re.compile(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(alert|emerg)\]")

# nginx.conf's worker_shutdown_timeout.
WORKER_SHUTDOWN_TIMEOUT = 30


def nginx_processes(container) -> dict[int, str]:
    """Process id -> title ("nginx: worker process", ...), from /proc: the
    nginx images have no ps."""
    listing = container.exec_run(
        [
            "sh",
            "-c",
            "for f in /proc/[0-9]*/cmdline; do "
            "p=${f#/proc/}; printf '%s %s\\n' \"${p%/cmdline}\" \"$(tr '\\0' ' ' < $f)\"; "
            "done",
        ]
    ).output.decode()
    processes = {}
    for line in listing.splitlines():
        pid, _, title = line.partition(" ")
        if title.startswith("nginx: "):
            processes[int(pid)] = title.strip()
    return processes


def workers(container) -> set[int]:
    return {
        pid
        for pid, title in nginx_processes(container).items()
        if title.startswith("nginx: worker process")
    }


def test_one_worker_per_cpu_of_the_container_s_limit(stack):
    for nginx in stack.each("nginx"):
        cpu_limit = nginx.attrs["HostConfig"]["NanoCpus"] / 1e9
        assert cpu_limit > 0
        titles = nginx_processes(nginx).values()
        running = [t for t in titles if t == "nginx: worker process"]
        assert len(running) == math.ceil(cpu_limit), list(titles)


def test_a_clean_start_logs_no_alert(stack):
    # From the container's last start: no worker failed to get its descriptors
    # (setrlimit), nothing refused. (Not before it: a test that stops a
    # process of nginx's container, which nginx notes as an alert, restarts
    # the container after; tests/e2e/test_nginx_follow_web.py.)
    for nginx in stack.each("nginx"):
        started = datetime.fromisoformat(nginx.attrs["State"]["StartedAt"][:19] + "+00:00")
        log = nginx.logs(since=int(started.timestamp())).decode(errors="replace")
        assert "start worker process" in log
        assert not [line for line in log.splitlines() if ALERT_OR_EMERG.match(line)]


@pytest.mark.chaos
async def test_no_old_worker_outlives_a_reload_for_an_open_websocket(stack):
    [nginx] = stack.containers("nginx")
    async with stack.ws_connect() as connection:
        old = workers(nginx)
        assert nginx.exec_run(["nginx", "-s", "reload"]).exit_code == 0
        reloaded = time.monotonic()
        while workers(nginx) & old:
            assert time.monotonic() - reloaded < WORKER_SHUTDOWN_TIMEOUT + 10, (
                "an old worker is still running",
                nginx_processes(nginx),
            )
            await asyncio.sleep(0.5)
        # The old worker held the socket, and closed it as it left: the
        # site's pages then reconnect, to a new worker.
        await asyncio.wait_for(connection.wait_closed(), timeout=5)
