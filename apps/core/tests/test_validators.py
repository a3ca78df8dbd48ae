import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from apps.core.validators import validate_upload_size


@override_settings(UPLOAD_MAX_BYTES=1024)
def test_a_file_at_the_limit_passes():
    validate_upload_size(SimpleUploadedFile("a.txt", b"x" * 1024))


@override_settings(UPLOAD_MAX_BYTES=1024)
def test_a_file_over_the_limit_is_refused_with_the_limit_in_words():
    with pytest.raises(ValidationError) as refused:
        validate_upload_size(SimpleUploadedFile("a.txt", b"x" * 1025))
    assert refused.value.code == "file_too_large"
    assert "files are limited to 1.0\xa0KB" in refused.value.messages[0]
