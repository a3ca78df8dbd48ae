import uuid
from datetime import timedelta
from pathlib import PurePosixPath

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.tasks import TaskResultStatus
from django.tasks.exceptions import TaskResultDoesNotExist
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from apps.core.uploads import upload_name

from .models import UPLOADS_FOLDER, Upload
from .tasks import checksum_compute

UPLOADS_KEY = "demo_uploads"
# The session lists this many of the visitor's latest uploads.
UPLOADS_LISTED = 10
# File systems give a file whole blocks (4 KiB on ext4 and XFS), and each
# upload's folder takes one more: what an upload is counted as, so that
# a file of one byte costs something too, and a quota bounds the number of files
# (inodes), not only their bytes.
BLOCK_BYTES = 4096


class UploadRefused(Exception):
    """An upload over a limit: why, for the page, and the status to answer with."""

    def __init__(self, message: str, *, status: int):
        super().__init__(message)
        self.message, self.status = message, status


def upload_bytes(size: int) -> int:
    """What a file of `size` bytes takes in storage, as the limits count it."""
    return (-(-size // BLOCK_BYTES) + 1) * BLOCK_BYTES


def upload_allow(*, size: int, client: str | None, account) -> None:
    """Raise UploadRefused if a file of `size` bytes from `client` (and
    `account`, or None) would take either past DEMO_UPLOAD_QUOTA_BYTES, or
    all uploads kept past DEMO_UPLOADS_MAX_BYTES. Counts the rows kept
    (Upload): call it in the transaction that adds the new one, after
    uploads_lock(), or two requests at once could each take the last room."""
    needed = upload_bytes(size)
    # One query. Requests with no address (a Unix socket) share one quota.
    sums = {"total": Sum("bytes"), "client": Sum("bytes", filter=Q(client=client))}
    if account is not None:
        sums["account"] = Sum("bytes", filter=Q(account=account))
    kept = {"account": 0} | {
        what: total or 0 for what, total in Upload.objects.aggregate(**sums).items()
    }
    quota = settings.DEMO_UPLOAD_QUOTA_BYTES
    keep_hours = settings.DEMO_UPLOADS_KEEP // timedelta(hours=1)
    if max(kept["client"], kept["account"]) + needed > quota:
        raise UploadRefused(
            f"You have uploaded as much as one visitor may keep here "
            f"({filesizeformat(quota)}); files are deleted {keep_hours} hours after "
            "they are uploaded, and room comes back then.",
            status=429,
        )
    if kept["total"] + needed > settings.DEMO_UPLOADS_MAX_BYTES:
        raise UploadRefused(
            f"The uploads kept here are full ({filesizeformat(settings.DEMO_UPLOADS_MAX_BYTES)} "
            f"in all); files are deleted {keep_hours} hours after they are uploaded, "
            "and room comes back then.",
            status=413,
        )


def uploads_lock() -> None:
    """Until the transaction ends, no other upload is checked against the
    limits or saved: a PostgreSQL advisory lock, shared by every web process
    and replica. (SQLite, without DATABASE_URL, writes one at a time anyway.)"""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [Upload._meta.db_table])


def upload_save(*, session, file, client: str | None, account=None) -> str:
    """Save an uploaded file in default storage (the media volume, or S3),
    enqueue the task that computes its checksum, note both in the visitor's
    session, and return the file's storage name. Raises UploadRefused, and
    stores nothing, if the file would take its client (`client`, from
    apps.core.clients.client_network), its account (`account`: the user
    signed in, or None) or the whole store past its limit (upload_allow).

    Each file gets a folder with a random name: anyone with a file's URL may
    fetch it (nginx serves /media/ to all), so URLs must not be guessable,
    and the file keeps its own name for whoever downloads it, as far as it
    is safe to (apps.core.uploads.upload_name).

    The file's row and its task are written in one transaction, which holds
    the uploads' lock from the check to the commit; the file is saved before
    its row is written, so that a row never names a file younger than
    itself (tasks.uploads_expire relies on it). A failure after the save
    leaves a file without a row, which the expiry deletes all the same."""
    with transaction.atomic():
        uploads_lock()
        upload_allow(size=file.size, client=client, account=account)
        name = default_storage.save(
            f"{UPLOADS_FOLDER}/{uuid.uuid4().hex}/{upload_name(file.name)}", file
        )
        Upload.objects.create(
            name=name,
            bytes=upload_bytes(file.size),
            client=client,
            account=account,
            created_at=timezone.now(),
        )
        task = checksum_compute.enqueue(name)
    # When, for upload_list: a file the expiry has deleted is listed no more.
    upload = {"name": name, "checksum_task": task.id, "saved_at": timezone.now().timestamp()}
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
    if it failed). Not those kept longer than DEMO_UPLOADS_KEEP, which the
    expiry deletes (or has)."""
    uploads = []
    kept_since = (timezone.now() - settings.DEMO_UPLOADS_KEEP).timestamp()
    for upload in session.get(UPLOADS_KEY, []):
        if isinstance(upload, str):  # noted before uploads had checksums
            upload = {"name": upload}
        if upload.get("saved_at", kept_since) < kept_since:
            continue
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
