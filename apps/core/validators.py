from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat


def validate_upload_size(file) -> None:
    """For every FileField: a file over UPLOAD_MAX_BYTES is a form error, with
    the limit in words. Behind nginx a body that large is refused with 413
    before it gets here; this holds the same line wherever the form is posted
    (runserver, a proxy with a higher limit), so a big file is never a 500.

        file = forms.FileField(validators=[validate_upload_size])
    """
    if file.size > settings.UPLOAD_MAX_BYTES:
        raise ValidationError(
            "This file is %(size)s; files are limited to %(limit)s.",
            code="file_too_large",
            params={
                "size": filesizeformat(file.size),
                "limit": filesizeformat(settings.UPLOAD_MAX_BYTES),
            },
        )
