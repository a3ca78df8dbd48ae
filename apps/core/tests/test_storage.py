"""apps/core/storage.py: what an object in the bucket is stored as. No S3
server here: the parameters django-storages' own write path would send."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.storage import MediaS3Storage


@pytest.mark.parametrize(
    ("name", "claimed", "stored_as", "disposition"),
    [
        ("page.html", "text/html", "application/octet-stream", "attachment"),
        ("script.js", "text/javascript", "application/octet-stream", "attachment"),
        ("drawing.svg", "image/svg+xml", "application/octet-stream", "attachment"),
        ("fake.png", "text/html", "image/png", None),  # the extension decides, not the claim
        ("PHOTO.JPG", "application/octet-stream", "image/jpeg", None),
        ("archive.tar.gz", "application/gzip", "application/octet-stream", "attachment"),
    ],
)
def test_the_type_is_the_platform_s_not_the_uploader_s(name, claimed, stored_as, disposition):
    storage = MediaS3Storage(bucket_name="uploads", access_key="a", secret_key="b")
    upload = SimpleUploadedFile(name, b"<script>alert(1)</script>", content_type=claimed)
    parameters = storage._get_write_parameters(name, upload)
    assert parameters["ContentType"] == stored_as
    assert parameters.get("ContentDisposition") == disposition
    assert "ContentEncoding" not in parameters  # a .gz is the file itself
