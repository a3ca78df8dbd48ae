import re

import pytest
from django.conf import settings
from django.db import connection

from apps.demo.visits import VISITS_COOKIE

pytestmark = pytest.mark.django_db(transaction=True)


def visit_count(response) -> int:
    match = re.search(rb'id="visit-count"[^>]*>(\d+)<', response.content)
    assert match, "the page has no visit counter"
    return int(match[1])


def test_home_counts_visits_per_visitor(client):
    assert [visit_count(client.get("/")) for _ in range(3)] == [1, 2, 3]

    # Another browser, another session.
    other = type(client)()
    assert visit_count(other.get("/")) == 1


def session_rows() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM django_session")
        return cursor.fetchone()[0]


def test_a_first_visit_is_counted_and_writes_no_session(client):
    # A client that keeps no cookie makes every visit a first one: were it
    # to write a row each time, anyone could fill the table with GETs.
    for _ in range(3):
        response = type(client)().get("/")
        assert visit_count(response) == 1
        assert settings.SESSION_COOKIE_NAME not in response.cookies
    assert session_rows() == 0


def test_a_count_the_visitor_made_up_is_not_believed(client):
    client.cookies[VISITS_COOKIE] = "1000"
    assert visit_count(client.get("/")) == 1


def test_home_links_its_static_files_and_chat_box(client):
    html = client.get("/").content.decode()
    assert '<link rel="stylesheet" href="/static/demo/app.css">' in html
    assert '<script src="/static/demo/app.js" defer></script>' in html
    assert 'href="/static/core/favicon.svg"' in html  # from the base template
    assert 'id="chat-form"' in html


def test_about_is_public_and_sets_no_cookie(client):
    response = client.get("/about/")
    assert response.status_code == 200
    assert set(response["Cache-Control"].split(", ")) == {"public", "max-age=60"}
    # A shared cache (nginx) may keep only a response that is the same for everyone.
    assert not response.cookies
    assert "Cookie" not in response.get("Vary", "")
