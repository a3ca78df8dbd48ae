"""The user model, AUTH_USER_MODEL: Django's own user, signing in with an email
address rather than a username.

Django's documentation advises a custom user model for every new project: the
model in place from the first migration is the one a project can change later
(add a field, a profile, a team) with an ordinary migration, while moving off
auth.User once data exists means rewriting tables by hand. Add fields here.
"""

from typing import ClassVar

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models
from django.db.models.functions import Lower


class UserManager(DjangoUserManager):
    """Users made and found by email address, whatever its case."""

    use_in_migrations = True

    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        # All of it in lower case, not the domain alone as Django's does: two
        # accounts for Alice@example.com and alice@example.com would be one
        # person's, each signing in with half her mail.
        return (email or "").strip().lower()

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("A user needs an email address.")
        user = self.model(email=self.normalize_email(email), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    # Django's signatures take a username first; here the email is the name.
    def create_user(self, email=None, password=None, **extra_fields):  # type: ignore[override]
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email=None, password=None, **extra_fields):  # type: ignore[override]
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        if not (extra_fields["is_staff"] and extra_fields["is_superuser"]):
            raise ValueError("A superuser must have is_staff and is_superuser set.")
        return self._create_user(email, password, **extra_fields)

    def get_by_natural_key(self, username):
        # What authenticate() looks a sign-in up by (the admin's form too):
        # any case finds the one account.
        return self.get(email__iexact=username)


class User(AbstractUser):
    # No username: the email address is the name people sign in with.
    username = None  # type: ignore[assignment]
    email = models.EmailField("email address", max_length=254, unique=True)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    # createsuperuser asks for the email (USERNAME_FIELD) and the password alone.
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects = UserManager()  # type: ignore[misc]

    class Meta:
        constraints: ClassVar = [
            # One account per address whatever its case, held by PostgreSQL
            # itself, so that no path (a form, the admin, a shell, two
            # sign-ups at once) can make a second.
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]

    def clean(self):
        super().clean()
        self.email = type(self).objects.normalize_email(self.email)

    def __str__(self):
        return self.email
