import uuid
from pathlib import PurePosixPath

from django.core.files.storage import default_storage
from django.tasks import TaskResultStatus
from django.tasks.exceptions import TaskResultDoesNotExist

from apps.core.uploads import upload_name

from .tasks import checksum_compute

UPLOADS_KEY = "demo_uploads"
# The session lists this many of the visitor's latest uploads.
UPLOADS_LISTED = 10


def upload_save(*, session, file) -> str:
    """Save an uploaded file in default storage (the media volume, or S3),
    enqueue the task that computes its checksum, note both in the visitor's
    session, and return the file's storage name.

    Each file gets a folder with a random name: anyone with a file's URL may
    fetch it (nginx serves /media/ to all), so URLs must not be guessable,
    and the file keeps its own name for whoever downloads it, as far as it
    is safe to (apps.core.uploads.upload_name).

    The task is a row written in the caller's transaction: rolled back, it
    never runs."""
    name = default_storage.save(f"demo/{uuid.uuid4().hex}/{upload_name(file.name)}", file)
    task = checksum_compute.enqueue(name)
    upload = {"name": name, "checksum_task": task.id}
    session[UPLOADS_KEY] = [*session.get(UPLOADS_KEY, []), upload][-UPLOADS_LISTED:]
    return name


def upload_checksum(upload: dict) -> tuple[str | None, bool]:
    """(the SHA-256 in hex or None, whether it is still being computed),
    from the task's result."""
    if not upload.get("checksum_task"):
        return None, False
    try:
        result = checksum_compute.get_result(upload["checksum_task"])
    except TaskResultDoesNotExist:  # pruned (TASK_RESULTS_KEEP_DAYS)
        return None, False
    if result.status == TaskResultStatus.SUCCESSFUL:
        return result.return_value, False
    return None, not result.is_finished


def upload_list(*, session) -> list[dict]:
    """The visitor's latest uploads, oldest first: their storage names,
    file names, URLs and checksums ("sha256": None while "computing", or
    if it failed)."""
    uploads = []
    for upload in session.get(UPLOADS_KEY, []):
        if isinstance(upload, str):  # noted before uploads had checksums
            upload = {"name": upload}
        sha256, computing = upload_checksum(upload)
        uploads.append(
            {
                "storage_name": upload["name"],
                "name": PurePosixPath(upload["name"]).name,
                "url": default_storage.url(upload["name"]),
                "sha256": sha256,
                "computing": computing,
            }
        )
    return uploads
