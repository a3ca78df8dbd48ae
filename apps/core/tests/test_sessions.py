"""Sessions live in PostgreSQL alone: a session removed from the database is
gone on the next request, and nothing brings it back."""

import pytest
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.contrib.sessions.models import Session
from django.db import OperationalError, connection, transaction
from django.http import HttpResponse
from django.urls import path

from apps.core.sessions import SessionStore


def count_visit(request):
    request.session["visits"] = request.session.get("visits", 0) + 1
    return HttpResponse(str(request.session["visits"]))


def no_session(request):
    return HttpResponse("hello")


urlpatterns = [path("count/", count_visit), path("plain/", no_session)]

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]


def saved_session(**data) -> SessionStore:
    session = SessionStore()
    session.update(data)
    session.save()
    return session


def test_a_session_is_read_from_postgres():
    session = saved_session(answer=42)
    assert SessionStore(session.session_key)["answer"] == 42


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
