from allauth.account.forms import SignupForm as AllauthSignupForm
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.validators import MaxLengthValidator


class SignupForm(AllauthSignupForm):
    """allauth's sign-up form (ACCOUNT_FORMS), answering an address that has
    an account as slowly as one that does not.

    With ACCOUNT_PREVENT_ENUMERATION, a sign-up for an address that has an
    account makes none, mails the owner instead, and shows the same page. But
    it skips hashing the password, the slowest part of making an account (on
    purpose: PBKDF2's work), so its answer came sooner, and the time alone
    told who has an account. Hashing it anyway, as Django's ModelBackend does
    for a sign-in by an unknown name, leaves nothing to time.

    And an address longer than the model's field is refused with a message:
    allauth would cut it to fit, and make an account for an address nobody
    has."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        email = self.fields["email"]
        email.max_length = get_user_model()._meta.get_field("email").max_length
        email.validators.append(MaxLengthValidator(email.max_length))
        email.widget.attrs["maxlength"] = str(email.max_length)

    def try_save(self, request):
        if self.account_already_exists:
            make_password(self.cleaned_data.get("password1"))
        return super().try_save(request)
