"""Uploads in an S3 bucket (MEDIA_S3_BUCKET) get the type and disposition the
platform chooses, as nginx gives the media volume's files: never a type the
uploader claimed, which django-storages stores by default (an upload sent as
text/html would be served as HTML from the bucket)."""

from pathlib import PurePosixPath

from storages.backends.s3 import S3Storage

# The types an upload is served as, by its extension (any case): raster
# images, which cannot run script, shown in the browser; anything else is
# application/octet-stream, a download no browser runs or applies. nginx
# serves the media volume by the same list (nginx/snippets/media.conf's
# `types`; tests/test_nginx_site.py holds the two alike).
MEDIA_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "avif": "image/avif",
}
MEDIA_DEFAULT_TYPE = "application/octet-stream"


def media_type(name: str) -> str:
    return MEDIA_TYPES.get(PurePosixPath(name).suffix.lower().removeprefix("."), MEDIA_DEFAULT_TYPE)


class MediaS3Storage(S3Storage):
    def get_object_parameters(self, name):
        parameters = super().get_object_parameters(name)
        parameters["ContentType"] = media_type(name)
        if parameters["ContentType"] == MEDIA_DEFAULT_TYPE:
            parameters["ContentDisposition"] = "attachment"
        return parameters
