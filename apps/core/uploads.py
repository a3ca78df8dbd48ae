"""What every upload needs before it is stored: a name that is safe to keep."""

import unicodedata
from pathlib import PureWindowsPath

from django.core.exceptions import SuspiciousFileOperation
from django.utils.text import get_valid_filename

# Bytes of UTF-8 a stored name keeps, its extension included: well under a
# file system's 255 per name (a 200-letter name in a non-Latin script is
# 400 bytes) and S3's 1,024 per key, and still readable in a download.
UPLOAD_NAME_MAX_BYTES = 100
UPLOAD_SUFFIX_MAX_BYTES = 16


def upload_name(sent: str) -> str:
    """A name to store an upload under, from the one its sender chose: the
    last part of any path (either kind of slash), letters, digits, `-`, `_`
    and `.` alone (Django's get_valid_filename; spaces become `_`), cut to
    UPLOAD_NAME_MAX_BYTES with the extension kept. A name with nothing left
    becomes "file". Storing under it never fails for the name's sake, so an
    odd name is never a 500; pass the result to storage.save()."""
    name = unicodedata.normalize("NFC", PureWindowsPath(sent).name)
    try:
        name = get_valid_filename(name)
    except SuspiciousFileOperation:  # nothing left, or "." or ".."
        name = ""
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    suffix = _cut(suffix, UPLOAD_SUFFIX_MAX_BYTES)
    stem = _cut(stem, UPLOAD_NAME_MAX_BYTES - len(suffix.encode()) - 1).strip(".") or "file"
    return f"{stem}.{suffix}" if suffix else stem


def _cut(text: str, max_bytes: int) -> str:
    """`text`, cut to at most `max_bytes` of UTF-8, never inside a character."""
    return text.encode()[:max_bytes].decode(errors="ignore")
