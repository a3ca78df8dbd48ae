"""apps/core/uploads.py: any name a client sends becomes one that can be stored."""

import pytest

from apps.core.uploads import UPLOAD_NAME_MAX_BYTES, upload_name


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("notes.txt", "notes.txt"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\notes.txt", "notes.txt"),
        ("..", "file"),
        ("", "file"),
        ("my notes (1).txt", "my_notes_1.txt"),
        ("x\x00y\n.txt", "xy.txt"),
        ("résumé.pdf", "résumé.pdf"),
        ("e\u0301.txt", "é.txt"),  # one form of each letter (NFC)
        (".txt", "file.txt"),
        ("archive.tar.gz", "archive.tar.gz"),
    ],
)
def test_a_name_is_kept_as_far_as_it_is_safe(sent, stored):
    assert upload_name(sent) == stored


@pytest.mark.parametrize("sent", ["a" * 300 + ".txt", "ü" * 200 + ".txt", "文" * 120])
def test_a_long_name_is_cut_to_fit_keeping_its_extension(sent):
    stored = upload_name(sent)
    assert len(stored.encode()) <= UPLOAD_NAME_MAX_BYTES
    assert stored.endswith(".txt") == sent.endswith(".txt")
    assert stored[:5] == sent[:5]
