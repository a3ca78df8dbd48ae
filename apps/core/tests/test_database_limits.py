"""PostgreSQL's protections against runaway work (project/settings/base.py,
Database): the app's connections carry a statement timeout and an
idle-in-transaction timeout, and a request whose query the server cancels,
or that finds no connection in its process's pool in time, gets a 503 page
(apps.core.views.server_error), never a hung worker. Against the real
PostgreSQL of DATABASE_URL."""

import threading

import pytest
from django.conf import settings
from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.backends.postgresql.base import DatabaseWrapper
from django.test import Client
from django.urls import path


def slow_query(request):
    with connection.cursor() as cursor:
        # The configured timeout (10 s) made short for the test: the server
        # cancels the statement all the same, as it would a runaway one.
        cursor.execute("SET statement_timeout = '100ms'")
        cursor.execute("SELECT pg_sleep(5)")
    raise AssertionError("the statement was not cancelled")


urlpatterns = [path("slow-query/", slow_query)]
handler500 = "apps.core.views.server_error"

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db]


@pytest.fixture(autouse=True)
def postgresql():
    if connection.vendor != "postgresql":
        pytest.fail("needs PostgreSQL (DATABASE_URL)")


def setting(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


def test_the_app_connections_carry_both_timeouts():
    assert setting("statement_timeout") == f"{settings.DATABASE_STATEMENT_TIMEOUT}s"
    assert (
        setting("idle_in_transaction_session_timeout")
        == f"{settings.DATABASE_IDLE_IN_TRANSACTION_TIMEOUT}s"
    )
    # Well under Gunicorn's timeout (30 s), which kills a silent worker.
    assert 0 < settings.DATABASE_STATEMENT_TIMEOUT < 30


def test_a_query_over_the_statement_timeout_is_a_503():
    response = Client(raise_request_exception=False).get("/slow-query/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"


def test_a_process_whose_pool_is_taken_waits_then_answers_503():
    """Past DATABASE_POOL_SIZE, a thread waits for a connection in the pool's
    queue, up to its timeout, then gets Django's OperationalError, which
    server_error answers with a 503. Here a pool of one, under an alias of
    its own, with a short timeout."""
    settings_dict = {
        **connection.settings_dict,
        "CONN_MAX_AGE": 0,
        "OPTIONS": {
            **connection.settings_dict["OPTIONS"],
            "pool": {"min_size": 0, "max_size": 1, "timeout": 0.5},
        },
    }
    holder = DatabaseWrapper(settings_dict, alias="pool-of-one")
    holder.ensure_connection()
    errors = []

    def wait_for_one():
        waiter = DatabaseWrapper(settings_dict, alias="pool-of-one")
        try:
            waiter.ensure_connection()
        except OperationalError as error:
            errors.append(error)

    try:
        thread = threading.Thread(target=wait_for_one)
        thread.start()
        thread.join(timeout=10)
        assert not thread.is_alive()
        assert len(errors) == 1, errors
    finally:
        holder.close()
        holder.close_pool()


@pytest.mark.django_db(transaction=True)
def test_a_transaction_left_idle_is_ended_by_the_server():
    # PostgreSQL's FATAL, as psycopg reads it before the closed socket.
    with pytest.raises(DatabaseError, match=r"idle-in-transaction|closed"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL idle_in_transaction_session_timeout = '100ms'")
        # Idle in the transaction: past the timeout, the server ends the
        # session, and the next statement fails rather than hold a lock.
        threading.Event().wait(0.5)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    connection.close()
