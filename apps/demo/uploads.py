import uuid
from pathlib import PurePosixPath

from django.core.files.storage import default_storage

UPLOADS_KEY = "demo_uploads"
# The session lists this many of the visitor's latest uploads.
UPLOADS_LISTED = 10


def upload_save(*, session, file) -> str:
    """Save an uploaded file in default storage (the media volume, or S3),
    note it in the visitor's session, and return its storage name.

    Each file gets a folder with a random name: anyone with a file's URL may
    fetch it (nginx serves /media/ to all), so URLs must not be guessable,
    and the file keeps its own name for whoever downloads it."""
    name = default_storage.save(f"demo/{uuid.uuid4().hex}/{file.name}", file)
    session[UPLOADS_KEY] = [*session.get(UPLOADS_KEY, []), name][-UPLOADS_LISTED:]
    return name


def upload_list(*, session) -> list[dict]:
    """The visitor's latest uploads, oldest first: their names and URLs."""
    return [
        {"name": PurePosixPath(name).name, "url": default_storage.url(name)}
        for name in session.get(UPLOADS_KEY, [])
    ]
