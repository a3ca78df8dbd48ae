"""The demo's background tasks: each upload's SHA-256, computed by the worker
and pushed to the uploader's open page through the channel layer; and, on
the worker's schedule, the deletion of uploads kept long enough
(uploads_expire, at the end).

The worker records the checksum as the task's result (what the page reads
on a reload), then sends task_finished; checksum_announce, on that signal,
tells the upload's group. In that order, a page that opens its socket at any
moment either finds the result recorded or hears the announcement: sent
from the task itself, the announcement could come just before the result is
recorded, and a socket joining in between would get neither.

Safe to repeat, as every task must be: the same file gives the same
checksum, and a page told it twice shows it once.
"""

import hashlib
import logging
from pathlib import PurePosixPath

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.files.storage import default_storage
from django.tasks import TaskResultStatus, task
from django.utils import timezone

from .models import UPLOADS_FOLDER, Upload

logger = logging.getLogger(__name__)


def checksum_group(name: str) -> str:
    """The channel-layer group that hears when the checksum of the upload
    stored as `name` is ready, named after its random folder. Only
    UploadsConsumer joins it, for the uploads in the visitor's own session:
    no client names a group."""
    return f"upload_{PurePosixPath(name).parent.name}"


@task
def checksum_compute(name: str) -> str:
    """The SHA-256, in hex, of the file stored as `name` in default storage
    (the media volume, or S3)."""
    digest = hashlib.sha256()
    with default_storage.open(name, "rb") as file:
        for chunk in file.chunks():
            digest.update(chunk)
    return digest.hexdigest()


def checksum_announce(sender, task_result, **kwargs) -> None:
    """On task_finished (connected in apps.py): tell the upload's group its
    checksum, once the worker has recorded it."""
    if task_result.task.func is not checksum_compute.func:
        return
    if task_result.status != TaskResultStatus.SUCCESSFUL:
        return
    [name] = task_result.args
    try:
        layer = get_channel_layer()
        assert layer is not None  # settings always name a default layer
        async_to_sync(layer.group_send)(
            checksum_group(name),
            {"type": "upload.checksum", "upload": name, "sha256": task_result.return_value},
        )
    except Exception:
        # The checksum is recorded: a reload shows it. The worker must not
        # stop over a message (Redis away).
        logger.warning("could not announce the checksum of %s", name, exc_info=True)


@task
def uploads_expire() -> int:
    """Delete the uploads older than DEMO_UPLOADS_KEEP, files and rows: how
    many files were deleted. A job of the worker's schedule (TASK_SCHEDULES).

    The files are found in storage, not through their rows, so that every
    file goes: those saved before uploads had rows, and any whose request
    failed after saving it. A row is written after its file is saved
    (uploads.upload_save), so a row older than the cut-off names a file
    older than it, deleted just before. Safe to run twice, or late."""
    cutoff = timezone.now() - settings.DEMO_UPLOADS_KEEP
    deleted = 0
    try:
        folders, _ = default_storage.listdir(UPLOADS_FOLDER)
    except FileNotFoundError:  # nothing uploaded yet (S3 lists nothing instead)
        folders = []
    for folder in folders:
        path = f"{UPLOADS_FOLDER}/{folder}"
        _, files = default_storage.listdir(path)
        old = [f"{path}/{file}" for file in files]
        old = [name for name in old if default_storage.get_modified_time(name) < cutoff]
        for name in old:
            default_storage.delete(name)
        deleted += len(old)
        # Its folder, once emptied here: never one a request has just made
        # for a file it is still saving. (A bucket has no folders.)
        if old and len(old) == len(files):
            default_storage.delete(path)
    Upload.objects.filter(created_at__lt=cutoff).delete()
    if deleted:
        logger.info("deleted %s uploads older than %s", deleted, settings.DEMO_UPLOADS_KEEP)
    return deleted
