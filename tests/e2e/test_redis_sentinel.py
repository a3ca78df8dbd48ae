"""Redis through Sentinel (REDIS_SENTINELS, project/settings/base.py): a real
Sentinel, beside the stack's Redis, names it as the primary, and the cache,
the session copies and the channel layer of the settings find it there."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from project.env import BASE_DIR
from tests.stack import wait_until

pytestmark = pytest.mark.e2e

# The name the Sentinel knows the primary by: no host has it, so only the
# Sentinel's answer leads to the server.
PRIMARY = "mymaster"

# The Sentinel's configuration (a file it may rewrite): the stack's Redis,
# reached as Redis's admin (a Sentinel runs INFO, which the app's user may
# not), at the address and with the password in the environment.
SENTINEL = f"""
cat > /tmp/sentinel.conf <<END
port 26379
sentinel monitor {PRIMARY} $PRIMARY_ADDRESS 6379 1
sentinel auth-user {PRIMARY} admin
sentinel auth-pass {PRIMARY} $ADMIN_PASSWORD
END
exec redis-server /tmp/sentinel.conf --sentinel
"""

# Through the settings, in a process of their own: a value written to each
# cache and read back, a message sent through the channel layer and received.
ROUND_TRIPS = """
import json
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import caches

answers = {}
for alias in ("default", "sessions"):
    caches[alias].set("sentinel-test", alias, 10)
    answers[alias] = caches[alias].get("sentinel-test")
    caches[alias].delete("sentinel-test")

async def channel_layer_round_trip():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "test.message", "text": "channels"})
    answer = (await layer.receive(channel))["text"]
    await layer.flush()
    return answer

answers["channels"] = async_to_sync(channel_layer_round_trip)()
print(json.dumps(answers))
"""


@pytest.fixture
def sentinel(stack) -> str:
    """A Sentinel on the stack's back network, watching its Redis: its address."""
    primary = stack.containers("redis")[0]
    container = stack.docker.containers.run(
        primary.image,
        ["sh", "-c", SENTINEL],
        detach=True,
        environment={
            "PRIMARY_ADDRESS": stack.address_of(primary),
            "ADMIN_PASSWORD": Path(os.environ["REDIS_ADMIN_PASSWORD_FILE"]).read_text(),
        },
        network=f"{stack.project}_back",
        cap_drop=["ALL"],
    )
    try:
        address = stack.address_of(container)

        def knows_the_primary() -> bool:
            with redis.Redis(host=address, port=26379, socket_timeout=2) as client:
                return client.sentinel_get_master_addr_by_name(PRIMARY) is not None

        wait_until(knows_the_primary, timeout=30, what="the Sentinel naming the primary")
        yield address
    finally:
        container.remove(force=True)


def test_the_cache_sessions_and_channel_layer_find_redis_through_sentinel(sentinel):
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {ROUND_TRIPS}"],
        cwd=BASE_DIR,
        # The password stays REDIS_PASSWORD_FILE's, the stack's app user's.
        env={**os.environ, "REDIS_URL": f"redis://{PRIMARY}", "REDIS_SENTINELS": sentinel},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(result.stdout or "null") == {
        "default": "default",
        "sessions": "sessions",
        "channels": "channels",
    }, result.stderr
