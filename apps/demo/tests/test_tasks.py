"""The checksum task, run by the platform's worker (one turn of its loop) on
the real PostgreSQL, announcing through the real Redis channel layer, with
uploads in a temporary MEDIA_ROOT."""

import asyncio
import hashlib
import os
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.tasks import TaskResultStatus

from apps.core.tasks.worker import Worker
from apps.demo.tasks import checksum_compute, checksum_group

pytestmark = pytest.mark.django_db(transaction=True)


def stored(content: bytes) -> str:
    """A file saved as an upload is: its storage name."""
    return default_storage.save(f"demo/{uuid.uuid4().hex}/file.bin", ContentFile(content))


def run_next():
    """Claim the next ready task and run it, as one turn of the worker's loop does."""
    worker = Worker()
    row = worker.claim()
    assert row is not None, "no task was ready"
    worker.run_task(row)
    row.refresh_from_db()
    return row


async def listening(group: str) -> str:
    """A channel of the channel layer, in `group`."""
    layer = get_channel_layer()
    assert layer is not None
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    return channel


async def received(channel: str, *, timeout: float = 5) -> dict:
    """The channel's next message; TimeoutError if none comes in time."""
    layer = get_channel_layer()
    assert layer is not None
    return await asyncio.wait_for(layer.receive(channel), timeout=timeout)


async def channel_is_empty(channel: str) -> bool:
    try:
        await received(channel, timeout=0.5)
    except TimeoutError:
        return True
    return False


async def test_the_worker_computes_the_sha256_and_tells_the_upload_s_group():
    # Larger than a chunk (64 KiB): every chunk counts.
    content = os.urandom(200_000)
    name = await sync_to_async(stored)(content)
    other = await sync_to_async(stored)(b"another upload")
    mine, theirs = await listening(checksum_group(name)), await listening(checksum_group(other))

    result = await sync_to_async(checksum_compute.enqueue)(name)
    row = await sync_to_async(run_next)()

    expected = hashlib.sha256(content).hexdigest()
    assert row.status == TaskResultStatus.SUCCESSFUL
    await sync_to_async(result.refresh)()
    assert result.return_value == expected
    message = await received(mine)
    assert message == {"type": "upload.checksum", "upload": name, "sha256": expected}
    assert await channel_is_empty(theirs)


async def test_run_twice_it_gives_the_same_checksum_and_the_same_message():
    content = b"at least once"
    name = await sync_to_async(stored)(content)
    channel = await listening(checksum_group(name))

    results = []
    for _ in range(2):
        results.append(await sync_to_async(checksum_compute.enqueue)(name))
        await sync_to_async(run_next)()
    for result in results:
        await sync_to_async(result.refresh)()

    expected = hashlib.sha256(content).hexdigest()
    assert [result.return_value for result in results] == [expected, expected]
    assert [(await received(channel))["sha256"] for _ in range(2)] == [expected, expected]


def test_with_redis_away_the_checksum_is_still_recorded_and_the_worker_goes_on(monkeypatch):
    def unreachable():
        raise ConnectionError("Redis is away")

    monkeypatch.setattr("apps.demo.tasks.get_channel_layer", unreachable)
    result = checksum_compute.enqueue(stored(b"quietly"))
    assert run_next().status == TaskResultStatus.SUCCESSFUL
    result.refresh()
    assert result.return_value == hashlib.sha256(b"quietly").hexdigest()


def test_groups_are_the_uploads_random_folders():
    folder = uuid.uuid4().hex
    assert checksum_group(f"demo/{folder}/notes.txt") == f"upload_{folder}"
