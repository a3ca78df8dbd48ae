"""Backups that restore: deploy/backup.sh and deploy/restore.sh (`make backup`,
`make restore`), run on the stack as docs/operating.md says, across the loss of the
whole database.

Slow, and it destroys the stack's database (then puts it back), so `make chaos`
runs it. It leaves the stack running and ready, with every row it had.
"""

import os
import re
import subprocess
import time

import pytest

from tests.stack import is_logged_in, log_in, stack_database, user_create

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]


def script_run(stack, *command: str) -> str:
    """A deploy/ script on this stack, as `make` runs it on the host."""
    result = subprocess.run(
        command,
        env={**os.environ, "COMPOSE_PROJECT_NAME": stack.project},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def database_destroy(stack) -> None:
    """Lose every file of the database: stop PostgreSQL, empty its volume, and
    start it again. It starts as on a new machine: initdb, then
    deploy/postgres/create-app-role.sh makes an empty database."""
    (db,) = stack.containers("db")
    db.stop(timeout=30)
    volume = next(m["Name"] for m in db.attrs["Mounts"] if m["Destination"].endswith("/data"))
    stack.docker.containers.run(
        db.image,
        ["find", "/data", "-mindepth", "1", "-delete"],
        entrypoint=[],
        user="postgres",
        volumes={volume: {"bind": "/data", "mode": "rw"}},
        remove=True,
    )
    db.start()
    deadline = time.monotonic() + 120
    while True:
        db.reload()  # the health check's answer since the start, not before
        if db.attrs["State"]["Health"]["Status"] == "healthy":
            return
        assert time.monotonic() < deadline, "the new database did not become healthy"
        time.sleep(1)


def table_exists(name: str) -> bool:
    # The stack's own database, as the superuser (DATABASE_URL of the tests).
    with stack_database(connect_timeout=5) as connection:
        return connection.execute("SELECT to_regclass(%s)", [name]).fetchone()[0] is not None


def test_a_backup_restores_every_row_after_the_database_is_lost(stack, tmp_path):
    users = [user_create(stack) for _ in range(3)]

    output = script_run(stack, "deploy/backup.sh", str(tmp_path))
    (dump,) = tmp_path.iterdir()
    assert re.fullmatch(r"app-\d{4}-\d\d-\d\dT\d{6}Z\.dump", dump.name), dump.name
    assert str(dump) in output
    assert dump.read_bytes().startswith(b"PGDMP")  # pg_dump's custom format
    assert dump.stat().st_mode & 0o077 == 0  # password hashes inside: yours alone

    try:
        database_destroy(stack)
        assert not table_exists("accounts_user"), "the database was not destroyed"

        output = script_run(stack, "deploy/restore.sh", str(dump))
        assert "restore: done" in output
    finally:
        stack.wait_ready(timeout=90)

    # Every user is back, and can log in through the site.
    for email, password in users:
        browser = stack.browser()
        log_in(stack, browser, email, password)
        assert is_logged_in(stack, browser), email


def test_restore_refuses_a_missing_file_and_changes_nothing(stack, tmp_path):
    result = subprocess.run(
        ["deploy/restore.sh", str(tmp_path / "nothing.dump")],
        env={**os.environ, "COMPOSE_PROJECT_NAME": stack.project},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "missing or empty" in result.stderr
    assert table_exists("accounts_user")


def test_a_session_made_after_the_dump_is_not_served_after_a_restore(stack, tmp_path):
    email, password = user_create(stack)
    script_run(stack, "deploy/backup.sh", str(tmp_path))
    (dump,) = tmp_path.iterdir()
    # Logged in after the dump, as a user who is in it: the session's row is
    # not in the dump, and its copy in Redis must not outlive the restore.
    later = stack.browser()
    log_in(stack, later, email, password)
    assert is_logged_in(stack, later)
    try:
        assert "restore: done" in script_run(stack, "deploy/restore.sh", str(dump))
    finally:
        stack.wait_ready(timeout=90)
    assert not is_logged_in(stack, later)
    browser = stack.browser()
    log_in(stack, browser, email, password)
    assert is_logged_in(stack, browser)
