"""/accounts/: sign up, confirm an address, sign in and out, change and reset
a password. django-allauth's views at its own paths (LOGIN_URL is Django's
conventional /accounts/login/), but for the two links people follow from
their mail, answered here with a 4xx when the link no longer works."""

from allauth.account import urls as allauth_urls
from django.urls import include, path, re_path

from . import views

urlpatterns = [
    path(
        "accounts/",
        include(
            [
                # The same paths and names as allauth's, found first.
                re_path(
                    r"^confirm-email/(?P<key>[-:\w]+)/$",
                    views.EmailConfirm.as_view(),
                    name="account_confirm_email",
                ),
                re_path(
                    r"^password/reset/key/(?P<uidb36>[0-9A-Za-z]+)-(?P<key>.+)/$",
                    views.PasswordResetFromKey.as_view(),
                    name="account_reset_password_from_key",
                ),
                *allauth_urls.urlpatterns,
            ]
        ),
    ),
]
