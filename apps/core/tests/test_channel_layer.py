"""The channel layer of the settings, against the test stack's real Redis."""

import asyncio
import time
import uuid

import pytest
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils.module_loading import import_string

# Without the subscription's confirmation (apps/core/channel_layer.py), from
# 1 to 9 of these were lost in a run: this many lose some every time.
JOINS = 3000
# What comes does so in milliseconds: a message not here by then is lost.
LOST_AFTER = 1  # second


@pytest.fixture
def redis_channel_layer():
    if "Redis" not in settings.CHANNEL_LAYERS["default"]["BACKEND"]:
        pytest.fail("these tests need the stack's Redis (REDIS_URL)")


async def test_a_message_sent_to_a_group_at_once_after_joining_it_arrives(redis_channel_layer):
    # The joining layer stands for one Daphne process, the sending one (its
    # own connections) for another, as two asgi replicas.
    config = settings.CHANNEL_LAYERS["default"]
    joiner = get_channel_layer()
    sender = import_string(config["BACKEND"])(**config["CONFIG"])
    run, lost = uuid.uuid4().hex, 0
    started = time.monotonic()
    try:
        channel = await joiner.new_channel()
        # One after the other, each send at once after its join. (Side by
        # side, joins queue before sends on the layer's lock: 3000 of them
        # at once lost none even without the confirmation.)
        for number in range(JOINS):
            group = f"join-{run}-{number}"
            await joiner.group_add(group, channel)
            await sender.group_send(group, {"type": "test.message", "number": number})
            try:
                message = await asyncio.wait_for(joiner.receive(channel), LOST_AFTER)
            except TimeoutError:
                # The wait's end unsubscribed the channel (it was cancelled).
                lost, channel = lost + 1, await joiner.new_channel()
            else:
                assert message["number"] == number
            await joiner.group_discard(group, channel)
    finally:
        await joiner.flush()
        await sender.flush()
    assert lost == 0, f"{lost} of {JOINS} messages lost"
    assert time.monotonic() - started < 20  # seconds: this is not the slow part of CI
