"""Sessions live in PostgreSQL with a copy in Redis: losing Redis, or Redis
missing writes, loses nothing and never serves an older copy."""

import pytest
from django.contrib import admin
from django.core.cache import caches
from django.http import HttpResponse
from django.urls import path

from apps.core.sessions import SessionStore, version_cookie_name


def count_visit(request):
    request.session["visits"] = request.session.get("visits", 0) + 1
    return HttpResponse(str(request.session["visits"]))


urlpatterns = [path("count/", count_visit), path("admin/", admin.site.urls)]

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]


def saved_session(**data) -> SessionStore:
    session = SessionStore()
    session.update(data)
    session.save()
    return session


def test_saved_session_is_served_from_redis():
    session = saved_session(answer=42)
    cached = caches["sessions"].get(SessionStore.cache_key_prefix + session.session_key)
    assert cached == {"version": session.version, "data": {"answer": 42}}


def test_new_session_is_written_to_redis_once(monkeypatch):
    cache, written = caches["sessions"], []
    real_set = cache.set

    def noted_set(key, *args, **kwargs):
        written.append(key)
        return real_set(key, *args, **kwargs)

    monkeypatch.setattr(cache, "set", noted_set)
    session = saved_session(answer=42)
    assert written == [SessionStore.cache_key_prefix + session.session_key]


def test_each_save_gives_a_new_version():
    session = saved_session(answer=42)
    first = session.version
    session["answer"] = 43
    session.save()
    assert session.version != first


def test_session_survives_losing_redis():
    session = saved_session(answer=42)
    caches["sessions"].clear()  # as after a Redis restart
    assert SessionStore(session.session_key, version=session.version)["answer"] == 42


def test_sessions_work_while_redis_is_unreachable(sessions_redis_down):
    session = saved_session(answer=42)
    with sessions_redis_down:
        during_outage = SessionStore(session.session_key, version=session.version)
        assert during_outage["answer"] == 42  # from PostgreSQL
        during_outage["answer"] = 43
        during_outage.save()  # to PostgreSQL; the cache error is logged, not raised

        new_visitor = saved_session(answer=1)
        assert SessionStore(new_visitor.session_key, version=new_visitor.version)["answer"] == 1


def test_copy_that_missed_a_write_is_never_served(sessions_redis_down):
    session = saved_session(answer=42)  # Redis has {answer: 42}
    with sessions_redis_down:
        during_outage = SessionStore(session.session_key, version=session.version)
        during_outage["answer"] = 43
        during_outage.save()  # PostgreSQL has 43; Redis, unreachable, still has 42

    # Redis is back, with its old copy.
    after = SessionStore(session.session_key, version=during_outage.version)
    assert after["answer"] == 43


def test_no_version_reads_the_database():
    # A WebSocket handshake carries the session cookie but cannot be given a
    # new version cookie, so it must not trust the cache.
    session = saved_session(answer=42)
    caches["sessions"].set(
        SessionStore.cache_key_prefix + session.session_key,
        {"version": session.version, "data": {"answer": "stale"}},
    )
    assert SessionStore(session.session_key)["answer"] == 42


def test_middleware_sets_the_version_cookie_with_the_session_cookie(client):
    response = client.get("/count/")
    session_cookie = response.cookies["sessionid"]
    version_cookie = response.cookies[version_cookie_name()]
    cached = caches["sessions"].get(SessionStore.cache_key_prefix + session_cookie.value)
    assert cached["version"] == version_cookie.value
    for flag in ("max-age", "path", "httponly", "samesite", "secure"):
        assert version_cookie[flag] == session_cookie[flag]

    client.get("/count/")
    assert client.cookies[version_cookie_name()].value != version_cookie.value


def test_middleware_deletes_the_version_cookie_with_the_session_cookie(client, admin_user):
    client.force_login(admin_user)
    response = client.post("/admin/logout/")  # flushes the session
    assert response.cookies["sessionid"].value == ""
    assert response.cookies[version_cookie_name()].value == ""
    assert response.cookies[version_cookie_name()]["max-age"] == 0


def test_a_session_survives_losing_every_cached_copy(client):
    client.get("/count/")
    client.get("/count/")
    caches["sessions"].clear()  # as after a Redis restart
    assert client.get("/count/").content == b"3"


def test_a_session_never_goes_back_after_a_redis_outage(client, sessions_redis_down):
    assert client.get("/count/").content == b"1"  # Redis holds the count, 1
    with sessions_redis_down:
        assert client.get("/count/").content == b"2"  # PostgreSQL alone
    # Redis is back, still holding 1.
    assert client.get("/count/").content == b"3"
