"""Sessions: PostgreSQL keeps them, requests read a copy in Redis, and a
session removed from the database is not served again, by any path.

Real PostgreSQL and Redis; the evictor (CopyEvictor) runs as a thread here,
as it does in the worker."""

import threading
import time

import pytest
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection, transaction
from django.http import HttpResponse
from django.urls import path
from django_redis import get_redis_connection

from apps.core.sessions import (
    NOTIFY_CHANNEL,
    VOUCH_SECONDS,
    VOUCHED,
    Copies,
    CopyEvictor,
    SessionStore,
    copies_drop_all,
    copy_key,
)
from tests.stack import wait_until


def count_visit(request):
    request.session["visits"] = request.session.get("visits", 0) + 1
    return HttpResponse(str(request.session["visits"]))


def read_visits(request):
    return HttpResponse(str(request.session.get("visits", 0)))


def no_session(request):
    return HttpResponse("hello")


urlpatterns = [path("count/", count_visit), path("read/", read_visits), path("plain/", no_session)]

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]


def redis():
    return get_redis_connection("sessions")


@pytest.fixture(autouse=True)
def no_copies_yet():
    copies_drop_all()
    Copies.paused_until = 0.0
    yield
    Copies.paused_until = 0.0


class Evictor:
    """A CopyEvictor in a thread of its own, as the worker runs it."""

    def __init__(self):
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=CopyEvictor(self.stopping).run)

    def start(self):
        redis().delete(VOUCHED)
        self.thread.start()
        wait_until(lambda: redis().exists(VOUCHED), timeout=5, what="the evictor vouching")
        return self

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=5)
        assert not self.thread.is_alive()


@pytest.fixture
def evictor():
    running = Evictor().start()
    yield running
    running.stop()


def session_of(client) -> str:
    return client.cookies["sessionid"].value


def copied(client) -> str:
    """The session of a client that visited /count/, read once, so that Redis has its copy."""
    assert client.get("/count/").content == b"1"
    assert client.get("/read/").content == b"1"
    key = session_of(client)
    assert redis().exists(copy_key(key))
    return key


def saved_session(**data) -> SessionStore:
    session = SessionStore()
    session.update(data)
    session.save()
    return session


def test_a_session_is_read_from_postgres():
    session = saved_session(answer=42)
    assert SessionStore(session.session_key)["answer"] == 42


# --- Copies in Redis ------------------------------------------------------------------


def test_a_session_with_a_copy_is_read_with_no_query(evictor, client, django_assert_num_queries):
    copied(client)
    with django_assert_num_queries(0):
        assert client.get("/read/").content == b"1"


def test_redis_holds_no_session_key(evictor, client):
    key = copied(client)
    names = b" ".join(redis().scan_iter()).decode()
    assert "copy:" in names
    assert key not in names


def test_a_copy_nobody_vouches_for_is_not_trusted(client, django_assert_num_queries):
    copied(client)  # no evictor running: nothing vouches
    with django_assert_num_queries(1):
        assert client.get("/read/").content == b"1"


@pytest.mark.parametrize(
    "statement", ["DELETE FROM django_session WHERE session_key = %s", "TRUNCATE django_session"]
)
def test_a_row_deleted_by_hand_is_refused_within_a_second(evictor, client, statement):
    # As an operator logging everyone out after an incident.
    key = copied(client)
    with connection.cursor() as cursor:
        cursor.execute(statement, [key] if "%s" in statement else [])
    wait_until(lambda: not redis().exists(copy_key(key)), timeout=1, what="the copy dropped")
    assert client.get("/read/").content == b"0"


def test_many_rows_deleted_at_once_drop_every_copy(evictor, client):
    key = copied(client)
    Session.objects.bulk_create(
        Session(session_key=f"{n:032}", session_data="", expire_date="2100-01-01T00:00Z")
        for n in range(300)
    )
    Session.objects.all().delete()  # 301 keys: too many for one notification
    wait_until(lambda: not redis().exists(copy_key(key)), timeout=1, what="the copy dropped")


def test_with_the_evictor_gone_a_revoked_copy_lapses_within_the_bound(evictor, client):
    key = copied(client)
    evictor.stop()  # the path that drops copies is cut
    Session.objects.filter(session_key=key).delete()
    deleted_at = time.monotonic()
    wait_until(
        lambda: client.get("/read/").content == b"0",
        timeout=VOUCH_SECONDS + 1,
        what="the revoked session refused",
    )
    assert time.monotonic() - deleted_at <= VOUCH_SECONDS + 0.5


def test_an_evictor_that_starts_drops_every_copy(client):
    key = copied(client)
    running = Evictor().start()  # it may have missed revocations while away
    try:
        assert not redis().exists(copy_key(key))
    finally:
        running.stop()


def test_an_evictor_whose_connection_broke_listens_again_and_drops_every_copy(evictor, client):
    key = copied(client)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND query IN (%s, 'SELECT 1')",
            [f"LISTEN {NOTIFY_CHANNEL}"],
        )
        assert cursor.fetchone() == (True,)
    # Revocations sent meanwhile reached nobody: every copy goes.
    wait_until(lambda: not redis().exists(copy_key(key)), timeout=5, what="the copies dropped")
    wait_until(lambda: redis().exists(VOUCHED), timeout=5, what="the evictor vouching again")


def test_a_save_drops_the_copy_so_no_request_reads_the_old_data(evictor, client):
    key = copied(client)
    session = SessionStore(key)
    session["visits"] = 7
    session.save()
    assert not redis().exists(copy_key(key))
    assert client.get("/read/").content == b"7"


def test_a_copy_made_from_a_row_read_before_a_logout_is_not_kept(evictor, monkeypatch):
    # A request reads the row; a logout deletes it before that request writes
    # the copy: the copy must not bring the session back.
    key = saved_session(visits=1).session_key
    read_row = SessionStore._get_session_from_db

    def read_then_logout(self):
        row = read_row(self)
        SessionStore(key).delete()
        return row

    monkeypatch.setattr(SessionStore, "_get_session_from_db", read_then_logout)
    SessionStore(key).load()
    assert not redis().exists(copy_key(key))


def test_a_copy_this_process_cannot_drop_is_dropped_by_the_evictor(evictor, client):
    key = copied(client)
    # As if Redis had just failed this process: the save goes through PostgreSQL.
    Copies.paused_until = time.monotonic() + 60
    session = SessionStore(key)
    session["visits"] = 7
    session.save()
    wait_until(lambda: not redis().exists(copy_key(key)), timeout=1, what="the copy dropped")
    Copies.paused_until = 0.0
    assert client.get("/read/").content == b"7"


def test_redis_unreachable_reads_postgres_and_leaves_redis_alone_a_while(client, settings):
    assert client.get("/count/").content == b"1"
    settings.CACHES = {
        **settings.CACHES,
        "sessions": {**settings.CACHES["sessions"], "LOCATION": "redis://127.0.0.1:1/3"},
    }
    assert client.get("/read/").content == b"1"  # from PostgreSQL
    assert Copies.paused_until > time.monotonic()
    assert Copies.client() is None  # no connect timeout for the next requests
    assert client.get("/count/").content == b"2"


# --- Ending every session ----------------------------------------------------------------


def test_endsessions_ends_every_session_and_its_copy(client, capsys):
    key = copied(client)
    call_command("endsessions", "--no-input")
    assert not Session.objects.exists()
    assert not redis().exists(copy_key(key))
    assert client.get("/read/").content == b"0"
    assert "Ended 1 sessions" in capsys.readouterr().out


def test_endsessions_asks_first(client, monkeypatch):
    copied(client)
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError):
        call_command("endsessions")
    assert Session.objects.exists()


# --- Writing to PostgreSQL ----------------------------------------------------------------


def test_a_deleted_row_is_not_served_again(client):
    assert client.get("/count/").content == b"1"
    Session.objects.all().delete()  # as clearsessions, or an operator
    assert client.get("/count/").content == b"1"  # a new, empty session


def test_a_save_after_the_row_was_deleted_does_not_bring_it_back():
    # A request that loaded the session before a logout, and saves after it.
    session = SessionStore(saved_session(answer=42).session_key)
    assert session["answer"] == 42
    SessionStore(session.session_key).delete()
    session["answer"] = 43
    with pytest.raises(UpdateError):  # Django answers it with a 400
        session.save()
    assert not Session.objects.filter(session_key=session.session_key).exists()


def test_an_unreachable_database_on_save_is_an_outage_not_a_lost_session(monkeypatch):
    session = SessionStore(saved_session(answer=42).session_key)
    session["answer"] = 43

    def unreachable(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(Session, "save", unreachable)
    with pytest.raises(OperationalError):  # answered with a 503 (server_error)
        session.save()


async def test_saving_from_async_code_follows_the_same_rules():
    session = SessionStore()
    session["answer"] = 42
    await session.asave()
    assert (await Session.objects.aget(session_key=session.session_key)).get_decoded() == {
        "answer": 42
    }


def test_a_visit_that_does_not_use_the_session_writes_no_row(client):
    response = client.get("/plain/")
    assert "sessionid" not in response.cookies
    assert not Session.objects.exists()


def test_a_first_visit_writes_its_session_with_no_lookup_of_its_key(
    client, django_assert_num_queries
):
    with django_assert_num_queries(1) as captured:  # the INSERT, and nothing else
        assert client.get("/count/").content == b"1"
    assert captured.captured_queries[0]["sql"].startswith('INSERT INTO "django_session"')


def test_a_new_key_that_is_taken_is_drawn_again(monkeypatch):
    taken = saved_session(answer=1).session_key
    keys = iter([taken, "a" * 32])
    monkeypatch.setattr(SessionStore, "_get_new_session_key", lambda self: next(keys))
    session = saved_session(answer=2)
    assert session.session_key == "a" * 32
    assert SessionStore(taken)["answer"] == 1  # the other visitor's, untouched


def test_a_session_is_written_with_no_transaction_around_its_one_statement(client, monkeypatch):
    # BEGIN and COMMIT would be two round trips more, for one statement that
    # PostgreSQL applies atomically on its own.
    commits = []
    monkeypatch.setattr(connection, "_commit", lambda: commits.append("COMMIT"))
    assert client.get("/count/").content == b"1"  # INSERT
    assert client.get("/count/").content == b"2"  # UPDATE
    assert commits == []


def test_a_session_written_inside_a_transaction_fails_alone():
    # With ATOMIC_REQUESTS, say: a key that is taken must not break the
    # request's transaction (the INSERT runs in a savepoint).
    taken = saved_session(answer=1).session_key
    with transaction.atomic():
        session = SessionStore()
        session._session_key = taken
        session["answer"] = 2
        with pytest.raises(CreateError):
            session.save(must_create=True)
        assert Session.objects.filter(session_key=taken).exists()  # still usable
    assert SessionStore(taken)["answer"] == 1
