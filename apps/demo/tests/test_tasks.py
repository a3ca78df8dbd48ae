"""The checksum task and the uploads' expiry, run by the platform's worker (one turn of its loop) on
the real PostgreSQL, announcing through the real Redis channel layer, with
uploads in a temporary MEDIA_ROOT."""

import asyncio
import hashlib
import os
import uuid
from datetime import timedelta
from pathlib import PurePosixPath

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.tasks import TaskResultStatus
from django.utils import timezone

from apps.core.tasks.worker import Worker
from apps.demo.models import Upload
from apps.demo.tasks import checksum_compute, checksum_group, uploads_expire
from apps.demo.uploads import upload_bytes

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


# --- uploads_expire: the schedule's job ---------------------------------------------


def kept(content: bytes, *, age: timedelta, row: bool = True) -> str:
    """A file saved as an upload `age` ago, with its row unless `row` is
    False (a file from before uploads had rows): its storage name."""
    name = stored(content)
    then = timezone.now() - age
    os.utime(default_storage.path(name), (then.timestamp(), then.timestamp()))
    if row:
        Upload.objects.create(name=name, bytes=upload_bytes(len(content)), created_at=then)
    return name


def test_the_schedule_runs_the_expiry():
    jobs = [job["task"] for job in settings.TASK_SCHEDULES.values()]
    assert uploads_expire.module_path in jobs


def test_the_worker_deletes_the_uploads_kept_too_long_files_folders_and_rows(settings):
    settings.DEMO_UPLOADS_KEEP = timedelta(hours=24)
    old = kept(b"old", age=timedelta(hours=25))
    unrecorded = kept(b"old, with no row", age=timedelta(hours=25), row=False)
    new = kept(b"new", age=timedelta(hours=23))

    result = uploads_expire.enqueue()
    assert run_next().status == TaskResultStatus.SUCCESSFUL
    result.refresh()

    assert result.return_value == 2
    for name in (old, unrecorded):
        assert not default_storage.exists(name)
        assert not default_storage.exists(str(PurePosixPath(name).parent)), "its folder is left"
    assert default_storage.open(new).read() == b"new"
    assert list(Upload.objects.values_list("name", flat=True)) == [new]


def test_with_nothing_uploaded_yet_the_expiry_deletes_nothing():
    result = uploads_expire.enqueue()
    assert run_next().status == TaskResultStatus.SUCCESSFUL
    result.refresh()
    assert result.return_value == 0
