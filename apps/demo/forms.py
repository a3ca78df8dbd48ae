from django import forms

from apps.core.validators import validate_upload_size


class UploadForm(forms.Form):
    file = forms.FileField(validators=[validate_upload_size])
