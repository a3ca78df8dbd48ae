"""The account pages, against the real PostgreSQL, with Django's test client:
mail goes to Django's test outbox (pytest-django swaps every mailer for it).
The same flows in a real browser, through nginx, with the mail read from the
mail catcher: tests/e2e/test_accounts.py."""

import uuid

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core import mail
from django.db import IntegrityError, transaction
from django.test import Client, override_settings

from apps.accounts.models import User
from tests.stack import link_in

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
# Addresses of this run's own, and each test's own: allauth's limits on mail
# (one confirmation per address per 3 minutes) live in the cache, the real
# Redis, which outlives a test and a run.
DOMAIN = f"{uuid.uuid4().hex[:12]}.example.com"


def sign_up(client: Client, email: str, password: str = PASSWORD, password2: str | None = None):
    return client.post(
        "/accounts/signup/",
        {"email": email, "password1": password, "password2": password2 or password},
    )


def sign_in(client: Client, email: str, password: str = PASSWORD, **extra):
    return client.post("/accounts/login/", {"login": email, "password": password}, **extra)


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def confirmed_account(client: Client, email: str) -> None:
    sign_up(client, email)
    key_path = link_in(str(mail.outbox[-1].body), "/accounts/confirm-email/")
    assert client.post(key_path).status_code == 302
    mail.outbox.clear()


# --- The model -------------------------------------------------------------------


def test_an_email_address_is_one_account_whatever_its_case():
    user = User.objects.create_user("Alice@Example.COM", PASSWORD)
    assert user.email == "alice@example.com"
    assert User.objects.get_by_natural_key("ALICE@example.com") == user
    # Past the manager's normalising, PostgreSQL itself refuses a second.
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.bulk_create([User(email="ALICE@example.com")])


def test_createsuperuser_asks_for_an_email_and_a_password_alone():
    assert User.USERNAME_FIELD == "email"
    assert User.REQUIRED_FIELDS == []
    admin = User.objects.create_superuser("root@example.com", PASSWORD)
    assert admin.is_staff and admin.is_superuser and admin.check_password(PASSWORD)


# --- Sign up, confirm, sign in, sign out -------------------------------------------


def test_sign_up_confirm_sign_in_and_out(client):
    answer = sign_up(client, f"new@{DOMAIN}")
    assert answer.status_code == 302
    assert answer["Location"] == "/accounts/confirm-email/"
    [message] = mail.outbox
    assert message.to == [f"new@{DOMAIN}"]

    # Unconfirmed: the right password does not sign in.
    sign_in(client, f"new@{DOMAIN}")
    assert not signed_in(client)

    confirm = link_in(str(message.body), "/accounts/confirm-email/")
    assert client.get(confirm).status_code == 200
    assert client.post(confirm).status_code == 302
    # The link works once.
    assert client.get(confirm).status_code == 404

    assert sign_in(client, f"NEW@{DOMAIN}").status_code == 302
    assert signed_in(client)
    # Signing out is a POST: a link (a GET) only shows the form.
    assert client.get("/accounts/logout/").status_code == 200
    assert signed_in(client)
    assert client.post("/accounts/logout/").status_code == 302
    assert not signed_in(client)


@pytest.mark.parametrize(
    ("email", "password", "password2", "error"),
    [
        ("not-an-address", PASSWORD, None, "Enter a valid email address."),
        ("a" * 250 + "@example.com", PASSWORD, None, "at most 254 characters (it has 262)"),
        (f"ok@{DOMAIN}", "123", None, "This password is too short."),
        (f"ok@{DOMAIN}", "password", None, "This password is too common."),
        (f"ok@{DOMAIN}", PASSWORD, "another one entirely", "You must type the same password"),
    ],
)
def test_bad_sign_ups_are_told_why_and_make_no_account(client, email, password, password2, error):
    answer = sign_up(client, email, password, password2)
    assert answer.status_code == 200
    assert error in answer.content.decode()
    assert not User.objects.exists()
    assert mail.outbox == []


def test_forged_confirmation_link_is_a_404():
    client = Client()
    assert client.get("/accounts/confirm-email/forged-key/").status_code == 404
    assert client.post("/accounts/confirm-email/forged-key/").status_code == 404


# --- No page tells who has an account -----------------------------------------------


def test_sign_up_for_an_existing_address_answers_the_same_and_makes_no_second_account(client):
    User.objects.create_user(f"taken@{DOMAIN}", PASSWORD)
    first, again = sign_up(Client(), f"fresh@{DOMAIN}"), sign_up(Client(), f"TAKEN@{DOMAIN}")
    assert (again.status_code, again["Location"]) == (first.status_code, first["Location"])
    assert User.objects.filter(email__iexact=f"taken@{DOMAIN}").count() == 1
    # The owner hears of it; the page says nothing.
    assert [m.to for m in mail.outbox] == [[f"fresh@{DOMAIN}"], [f"taken@{DOMAIN}"]]


class CountingHasher(MD5PasswordHasher):
    algorithm = "counting"
    hashed = 0

    def encode(self, password, salt):
        CountingHasher.hashed += 1
        return super().encode(password, salt)


@override_settings(PASSWORD_HASHERS=[f"{__name__}.CountingHasher"])
def test_sign_up_for_an_existing_address_hashes_the_password_as_a_new_one_does(client):
    # Hashing is the slowest part of a sign-up (on purpose): an answer that
    # skipped it would come sooner, and the time would tell.
    User.objects.create_user(f"hash-taken@{DOMAIN}", PASSWORD)
    CountingHasher.hashed = 0
    sign_up(client, f"hash-fresh@{DOMAIN}")
    new = CountingHasher.hashed
    CountingHasher.hashed = 0
    sign_up(client, f"hash-taken@{DOMAIN}")
    assert CountingHasher.hashed == new >= 1


def test_password_reset_answers_the_same_for_any_address(client):
    User.objects.create_user(f"known@{DOMAIN}", PASSWORD)
    known = client.post("/accounts/password/reset/", {"email": f"known@{DOMAIN}"})
    unknown = client.post("/accounts/password/reset/", {"email": f"unknown@{DOMAIN}"})
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert sorted(m.to[0] for m in mail.outbox) == [f"known@{DOMAIN}", f"unknown@{DOMAIN}"]


# --- Passwords ---------------------------------------------------------------------


def test_password_reset_link_works_once_and_the_old_password_no_longer(client):
    confirmed_account(client, f"forgetful@{DOMAIN}")
    client.post("/accounts/password/reset/", {"email": f"forgetful@{DOMAIN}"})
    reset = link_in(str(mail.outbox[-1].body), "/accounts/password/reset/key/")
    form = client.get(reset, follow=True)  # allauth moves the key into the session
    assert form.status_code == 200
    new_password = "another horse, another staple"
    set_password = form.redirect_chain[-1][0]
    done = client.post(set_password, {"password1": new_password, "password2": new_password})
    assert done.status_code == 302

    assert Client().get(reset, follow=True).status_code == 400
    fresh = Client()
    sign_in(fresh, f"forgetful@{DOMAIN}", PASSWORD)
    assert not signed_in(fresh)
    sign_in(fresh, f"forgetful@{DOMAIN}", new_password)
    assert signed_in(fresh)


def test_forged_reset_link_is_a_400():
    User.objects.create_user(f"someone@{DOMAIN}", PASSWORD)
    answer = Client().get("/accounts/password/reset/key/1-forged-token/", follow=True)
    assert answer.status_code == 400
    assert "Bad Token" in answer.content.decode()


def test_password_change_ends_the_other_sessions_and_keeps_this_one():
    here, elsewhere = Client(), Client()
    confirmed_account(here, f"mover@{DOMAIN}")
    sign_in(here, f"mover@{DOMAIN}")
    sign_in(elsewhere, f"mover@{DOMAIN}")
    new_password = "a brand new passphrase"
    answer = here.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": new_password, "password2": new_password},
    )
    assert answer.status_code == 302
    assert here.get("/accounts/password/change/").status_code == 200
    assert elsewhere.get("/accounts/password/change/").status_code == 302  # to sign in


# --- The lockout covers /accounts/ ----------------------------------------------------


def test_too_many_wrong_passwords_at_accounts_sign_in_get_the_admins_429(client):
    User.objects.create_user(f"target@{DOMAIN}", PASSWORD)

    def admin_sign_in(client, email, password, **extra):
        return client.post("/admin/login/", {"username": email, "password": password}, **extra)

    # Nine failures from one client, at either sign-in form, in either case
    # of the address: one account to django-axes.
    for n in range(9):
        email = f"target@{DOMAIN}" if n % 2 else f"TARGET@{DOMAIN.upper()}"
        form = sign_in if n % 3 else admin_sign_in
        assert form(client, email, "wrong", REMOTE_ADDR="198.51.100.1").status_code == 200
    locked = sign_in(client, f"Target@{DOMAIN}", "wrong", REMOTE_ADDR="198.51.100.1")
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert sign_in(client, f"target@{DOMAIN}", REMOTE_ADDR="198.51.100.1").status_code == 429
    assert (
        admin_sign_in(client, f"target@{DOMAIN}", PASSWORD, REMOTE_ADDR="198.51.100.1").status_code
        == 429
    )
