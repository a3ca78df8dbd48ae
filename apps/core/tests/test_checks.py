"""The readiness checks, against the test stack's real PostgreSQL and Redis."""

import asyncio
import os
import time
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from channels.layers import get_channel_layer
from django.conf import settings

from apps.core.checks import CHANNEL_LAYER_TIMEOUT, channel_layer_check


def connections_opened() -> int:
    """How many connections Redis has accepted since it started."""
    address = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"]
    # As Redis's admin, at the layer's server: the app's user may not read
    # INFO (docker-compose.yml).
    server = urlsplit(address)
    admin_password = Path(os.environ["REDIS_ADMIN_PASSWORD_FILE"]).read_text()
    with redis.Redis(
        host=server.hostname, port=server.port or 6379, username="admin", password=admin_password
    ) as client:
        # This count includes this client's own connection.
        return client.info("stats")["total_connections_received"]


@pytest.fixture
def redis_channel_layer():
    if "Redis" not in settings.CHANNEL_LAYERS["default"]["BACKEND"]:
        pytest.fail("these tests need the stack's Redis (REDIS_URL)")


def test_the_channel_layer_check_keeps_its_loop_channel_and_connections(redis_channel_layer):
    channel_layer_check()
    loop, channel = channel_layer_check.loop, channel_layer_check.channel
    opened = connections_opened()
    for _ in range(20):
        channel_layer_check()
    assert (channel_layer_check.loop, channel_layer_check.channel) == (loop, channel)
    # No connection opened per check (only connections_opened's own, once):
    # a check is one PUBLISH and its return.
    assert connections_opened() == opened + 1


def test_the_channel_layer_check_costs_under_10_ms_of_cpu(redis_channel_layer):
    channel_layer_check()
    checks = 50
    cpu = time.process_time()  # every thread of this process: the loop's too
    for _ in range(checks):
        channel_layer_check()
    assert (time.process_time() - cpu) / checks < 0.010


def test_a_channel_layer_check_that_hangs_fails_in_time_and_the_next_recovers(
    redis_channel_layer, monkeypatch
):
    channel_layer_check()
    layer = get_channel_layer()
    send = layer.send

    async def send_that_hangs(channel, message):
        await asyncio.Event().wait()

    monkeypatch.setattr(layer, "send", send_that_hangs, raising=False)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        channel_layer_check()
    assert time.monotonic() - started < CHANNEL_LAYER_TIMEOUT + 0.5
    monkeypatch.setattr(layer, "send", send, raising=False)
    # The failed check dropped its channel and connections; this one makes new ones.
    channel_layer_check()


def test_a_forked_process_checks_on_a_loop_of_its_own(redis_channel_layer):
    # Gunicorn forks its workers: the parent's loop thread is not in the child.
    channel_layer_check()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads running
        pid = os.fork()
    if pid == 0:
        try:
            channel_layer_check()
        except BaseException:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
