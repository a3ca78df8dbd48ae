"""manage.py migrate waits for PostgreSQL to answer (apps/accounts/management/
commands/migrate.py): Compose starts it beside the database, not after the
database's health check."""

import socket
import time

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def test_migrate_waits_for_a_database_that_does_not_answer_yet(monkeypatch, capsys):
    connect = psycopg.connect
    refusals = []

    def not_yet(**params):
        if len(refusals) < 3:
            refusals.append(params)
            raise psycopg.OperationalError("connection refused")
        return connect(**params)

    monkeypatch.setattr(psycopg, "connect", not_yet)
    call_command("migrate", verbosity=1)
    assert len(refusals) == 3
    output = capsys.readouterr()
    assert "Waiting for the database (default) to answer" in output.err
    assert "No migrations to apply" in output.out


def test_migrate_gives_up_with_a_clear_error_when_nothing_answers(monkeypatch):
    # A port nothing listens on: every connect is refused at once.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    params = connection.get_connection_params
    monkeypatch.setattr(
        connection, "get_connection_params", lambda: {**params(), "host": "127.0.0.1", "port": port}
    )
    started = time.monotonic()
    with pytest.raises(CommandError, match=r"the database \(default\) did not answer within 1 s"):
        call_command("migrate", wait=1, verbosity=0)
    assert 1 <= time.monotonic() - started < 5
