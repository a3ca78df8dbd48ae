from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Who uses the site: the user model (AUTH_USER_MODEL), in place from the
    first migration so that a fork can add fields to it at any time, and the
    account pages under /accounts/ (django-allauth's, with the platform's
    template and answers). Every product needs them."""

    name = "apps.accounts"
