"""The PostgreSQL engine used when metrics are on (apps/core/postgresql):
queries, their durations and errors counted under the connection's alias,
in this process's registry, through a real connection to the test database."""

import pytest
from django.db import ProgrammingError, connection
from prometheus_client import REGISTRY

from apps.core.postgresql.base import DatabaseWrapper

pytestmark = pytest.mark.django_db

LABELS = {"alias": "timed", "vendor": "postgresql"}


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, {**LABELS, **labels}) or 0.0


@pytest.fixture
def timed_connection():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL)")
    wrapper = DatabaseWrapper(dict(connection.settings_dict), alias="timed")
    # Open: what it runs when it connects is counted too, before the test's own.
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


def test_queries_are_counted_and_timed(timed_connection):
    executed = sample("django_db_execute_total")
    timed = sample("django_db_query_duration_seconds_count")
    with timed_connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.executemany("SELECT %s", [(1,), (2,)])
    assert sample("django_db_execute_total") == executed + 3
    assert sample("django_db_execute_many_total") >= 2
    assert sample("django_db_query_duration_seconds_count") == timed + 2


def test_a_failed_query_is_counted_by_its_error(timed_connection):
    # psycopg's own error, which Django raises again as ProgrammingError.
    errors = sample("django_db_errors_total", type="SyntaxError")
    with timed_connection.cursor() as cursor, pytest.raises(ProgrammingError):
        cursor.execute("SELEC 1")
    assert sample("django_db_errors_total", type="SyntaxError") == errors + 1
