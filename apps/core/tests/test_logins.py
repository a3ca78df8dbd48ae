"""Failed logins through Django's own login view and authentication, with the
counts in the real PostgreSQL (django-axes; apps/core/logins.py). The client
address is set directly, as ClientAddressMiddleware sets it from nginx's
header: the end-to-end tests (tests/e2e/test_logins.py) have only the
addresses of the stack's containers, and no IPv6."""

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import RequestFactory

from apps.core.logins import client_network

pytestmark = pytest.mark.django_db

LIMIT = 10  # AXES_FAILURE_LIMIT: at one account, from one client
CLIENT_LIMIT = 30  # LOGIN_FAILURE_LIMIT_PER_CLIENT: from one client, at any accounts


@pytest.mark.parametrize(
    ("remote_addr", "counted_as"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2::1", "2001:db8:1:2::"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::"),
        ("2001:db8:1:3::1", "2001:db8:1:3::"),
        ("::ffff:203.0.113.7", "203.0.113.7"),  # IPv4, as a dual-stack socket writes it
        ("", None),
    ],
)
def test_an_ipv6_client_is_counted_by_its_64(remote_addr, counted_as):
    assert client_network(RequestFactory().get("/", REMOTE_ADDR=remote_addr)) == counted_as


def log_in(client, username: str, password: str, *, address: str):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


@pytest.fixture
def accounts(django_user_model):
    def create(name):
        email = f"{name}@example.com"
        django_user_model.objects.create_superuser(email, password="right-password")
        return email

    return create


def test_failures_at_one_account_from_one_client_lock_that_pair_alone(client, accounts):
    user, other = accounts("alice"), accounts("bob")
    for _ in range(LIMIT - 1):
        assert log_in(client, user, "wrong", address="198.51.100.1").status_code == 200
    locked = log_in(client, user, "wrong", address="198.51.100.1")
    assert locked.status_code == 429
    assert locked["Retry-After"] == "900"
    assert b"Try again in 15 minutes." in locked.content
    # Refused there even with the right password...
    assert log_in(client, user, "right-password", address="198.51.100.1").status_code == 429
    # ...while the owner, elsewhere, logs in, and that client at another account.
    assert log_in(client, user, "right-password", address="192.0.2.1").status_code == 302
    assert log_in(client, other, "right-password", address="198.51.100.1").status_code == 302


def test_nobody_can_lock_the_owner_out_from_elsewhere(client, accounts):
    user = accounts("alice")
    # Every address the attacker has, each to its lockout at the account.
    for n in range(3):
        for _ in range(LIMIT):
            log_in(client, user, "wrong", address=f"198.51.100.{n}")
        assert log_in(client, user, "wrong", address=f"198.51.100.{n}").status_code == 429
    assert log_in(client, user, "right-password", address="192.0.2.1").status_code == 302


def test_failures_from_one_client_at_many_accounts_lock_that_client(client, accounts):
    user = accounts("alice")
    for n in range(CLIENT_LIMIT - 1):
        assert log_in(client, f"nobody-{n}", "wrong", address="198.51.100.1").status_code == 200
    assert log_in(client, "nobody", "wrong", address="198.51.100.1").status_code == 429
    assert log_in(client, user, "right-password", address="198.51.100.1").status_code == 429
    assert log_in(client, user, "right-password", address="192.0.2.1").status_code == 302


def test_failures_from_one_ipv6_64_count_as_one_client(client, accounts):
    user = accounts("alice")
    # Each guess from another address of the same /64.
    for n in range(LIMIT - 1):
        assert log_in(client, user, "wrong", address=f"2001:db8::{n:x}").status_code == 200
    assert log_in(client, user, "wrong", address="2001:db8::ffff").status_code == 429
    assert log_in(client, user, "right-password", address="2001:db8::abcd").status_code == 429
    # The next /64 is another client.
    assert log_in(client, user, "right-password", address="2001:db8:0:1::1").status_code == 302


class CountingHasher(MD5PasswordHasher):
    """The test settings' hasher, counting every hash it computes."""

    hashes = 0

    def encode(self, password, salt):
        CountingHasher.hashes += 1
        return super().encode(password, salt)


def test_a_locked_out_login_hashes_no_password(client, accounts, settings):
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    user = accounts("alice")
    before = CountingHasher.hashes
    # From one address at one account: that pair is locked out.
    for _ in range(LIMIT):
        log_in(client, user, "wrong", address="198.51.100.1")
    assert CountingHasher.hashes - before >= LIMIT  # each of those was hashed
    hashes = CountingHasher.hashes
    for password in ["wrong", "right-password"]:
        assert log_in(client, user, password, address="198.51.100.1").status_code == 429
    assert CountingHasher.hashes == hashes
