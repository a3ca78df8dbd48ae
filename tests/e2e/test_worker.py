"""The worker in the running stack: tasks run, schedules keep their periods,
and faults (a SIGKILL, a stop, PostgreSQL away, a failing task) lose nothing.

Tasks are the platform's probe (apps/core/tasks/probes.py), enqueued with
Django in a web container, as any app's code enqueues; outcomes are read
from the tasks table in the stack's PostgreSQL.
"""

import json
import os
import subprocess
import threading
import time
import uuid

import pytest
from django.conf import settings

from apps.core.tasks.worker import CHORES_SECONDS
from tests.stack import stack_database

pytestmark = pytest.mark.e2e

TASKS = "django_tasks_database_dbtaskresult"


@pytest.fixture
def db():
    # DATABASE_URL is the stack's own database (the unit tests use a copy).
    with stack_database(autocommit=True) as connection:
        yield connection


def probe_enqueue(stack, **arguments) -> str:
    """Enqueue the probe from a web container: its task id."""
    code = (
        "import django; django.setup()\n"
        "from apps.core.tasks.probes import probe\n"
        f"print(probe.enqueue(**{arguments!r}).id)"
    )
    return stack.run_python(stack.containers("web")[0], code).strip()


def task_row(db, task_id: str) -> dict:
    row = db.execute(
        f"SELECT status, worker_ids, return_value, exception_class_path FROM {TASKS} WHERE id = %s",
        [task_id],
    ).fetchone()
    return dict(zip(("status", "worker_ids", "return_value", "error"), row, strict=True))


def wait_for(db, task_id: str, status: str, *, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while (row := task_row(db, task_id))["status"] != status:
        assert time.monotonic() < deadline, f"task {task_id} not {status} in {timeout} s: {row}"
        time.sleep(0.2)
    return row


def worker_container(stack):
    [worker] = stack.containers("worker")
    return worker


def worker_healthy(worker) -> bool:
    return worker.exec_run(["deploy/healthcheck.sh", "worker"]).exit_code == 0


def wait_healthy(worker, *, healthy: bool = True, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while worker_healthy(worker) != healthy:
        assert time.monotonic() < deadline, f"the worker's health never became {healthy}"
        time.sleep(0.5)


# --- Tasks run, and their lines say whose they are ----------------------------------


def test_a_task_runs_on_the_worker_and_its_lines_carry_its_id(stack, db):
    task_id = probe_enqueue(stack)
    row = wait_for(db, task_id, "SUCCESSFUL", timeout=30)
    assert row["return_value"] == {"attempt": 1}
    worker = worker_container(stack)
    assert row["worker_ids"][0].startswith(worker.attrs["Config"]["Hostname"])
    lines = stack.log_records("worker", task_id=task_id, until=lambda r: len(r) >= 2)
    assert {line["message"].rsplit("state=", 1)[-1] for line in lines} >= {"RUNNING", "SUCCESSFUL"}


def test_scheduled_jobs_catch_up_once_after_a_missed_period(stack, db):
    expired, current = uuid.uuid4().hex, uuid.uuid4().hex
    db.execute(
        "INSERT INTO django_session (session_key, session_data, expire_date) VALUES"
        " (%s, '', now() - interval '1 minute'), (%s, '', now() + interval '1 day')",
        [expired, current],
    )
    try:
        # As if the worker had been down over a midnight: a period missed.
        marked = db.execute("SELECT now()").fetchone()[0]
        db.execute(
            "UPDATE core_scheduledjob SET last_period = last_period - interval '1 day'"
            " WHERE name = 'sessions-clear'"
        )

        def kept() -> set[str]:
            rows = db.execute(
                "SELECT session_key FROM django_session WHERE session_key IN (%s, %s)",
                [expired, current],
            )
            return {key for (key,) in rows}

        deadline = time.monotonic() + 60
        while expired in kept():
            assert time.monotonic() < deadline, "the expired session is still there"
            time.sleep(0.5)
        assert kept() == {current}
        runs = db.execute(
            f"SELECT count(*) FROM {TASKS} WHERE task_path = %s AND enqueued_at >= %s",
            ["apps.core.tasks.jobs.sessions_clear", marked],
        ).fetchone()[0]
        assert runs == 1
    finally:
        db.execute("DELETE FROM django_session WHERE session_key = %s", [current])


# --- Faults -------------------------------------------------------------------------


@pytest.mark.chaos
def test_a_task_whose_worker_is_killed_runs_again_and_completes_once(stack, db):
    worker = worker_container(stack)
    task_id = probe_enqueue(stack, seconds=5)
    wait_for(db, task_id, "RUNNING", timeout=30)
    worker.kill(signal="SIGKILL")
    killed_at = time.monotonic()
    worker.reload()
    if worker.status != "running":
        worker.start()
    row = wait_for(db, task_id, "SUCCESSFUL", timeout=90)
    # Taken over once the dead worker's lease ran out, then run to the end.
    assert time.monotonic() - killed_at < settings.TASK_WORKER_LEASE_SECONDS + CHORES_SECONDS + 30
    assert len(row["worker_ids"]) == 2
    assert row["return_value"] == {"attempt": 2}
    assert stack.log_records("worker", task_id=task_id, level="WARNING")
    wait_healthy(worker)


@pytest.mark.chaos
def test_a_worker_stopped_mid_task_finishes_it_then_exits_0(stack, db):
    worker = worker_container(stack)
    task_id = probe_enqueue(stack, seconds=6)
    wait_for(db, task_id, "RUNNING", timeout=30)
    started = time.monotonic()
    worker.stop(timeout=75)
    stopped_after = time.monotonic() - started
    worker.reload()
    try:
        assert worker.attrs["State"]["ExitCode"] == 0
        row = task_row(db, task_id)
        assert row["status"] == "SUCCESSFUL"
        assert len(row["worker_ids"]) == 1
        # It waited for the task, and did not wait out the grace period.
        assert 1 < stopped_after < 60
    finally:
        worker.start()
        wait_healthy(worker)


@pytest.mark.chaos
def test_two_workers_enqueue_each_periods_run_once(stack, db):
    compose = ["docker", "compose", "up", "--detach", "--no-deps", "--no-recreate", "--wait"]
    environment = {**os.environ, "COMPOSE_PROJECT_NAME": stack.project}
    subprocess.run([*compose, "--scale", "worker=2", "worker"], env=environment, check=True)
    try:
        assert len(stack.containers("worker")) == 2
        marked = db.execute("SELECT now()").fetchone()[0]
        db.execute("UPDATE core_scheduledjob SET last_period = last_period - interval '1 day'")
        # Every worker goes through the schedule each CHORES_SECONDS: two
        # rounds of both, and a margin.
        time.sleep(2 * CHORES_SECONDS + 2)
        runs = dict(
            db.execute(
                f"SELECT task_path, count(*) FROM {TASKS} WHERE enqueued_at >= %s"
                " GROUP BY task_path",
                [marked],
            ).fetchall()
        )
        # Each job of the schedule (the stack runs the same settings), once.
        assert runs == {job["task"]: 1 for job in settings.TASK_SCHEDULES.values()}
        # Both workers were alive all along.
        alive = db.execute(
            "SELECT count(*) FROM core_workerbeat WHERE seen_at > now() - interval '5 seconds'"
        ).fetchone()[0]
        assert alive == 2
    finally:
        subprocess.run([*compose, "--scale", "worker=1", "worker"], env=environment, check=True)


ENQUEUE_STREAM = """
import sys, time
import django
django.setup()
from apps.core.tasks.probes import probe
end = time.monotonic() + {seconds}
while time.monotonic() < end:
    try:
        print(probe.enqueue().id, flush=True)
    except Exception as error:
        print("refused:", type(error).__name__, file=sys.stderr, flush=True)
    time.sleep(0.1)
"""


@pytest.mark.chaos
def test_postgres_away_under_a_stream_of_tasks_loses_none(stack):
    worker, web = worker_container(stack), stack.containers("web")[0]
    [postgres] = stack.containers("db")
    enqueued: list[str] = []

    def stream():
        result = web.exec_run(["python", "-c", ENQUEUE_STREAM.format(seconds=25)], demux=True)
        enqueued.extend((result.output[0] or b"").decode().split())

    streaming = threading.Thread(target=stream)
    streaming.start()
    try:
        time.sleep(3)
        postgres.stop(timeout=30)
        # The worker's health says PostgreSQL is away...
        wait_healthy(worker, healthy=False, timeout=30)
        time.sleep(3)
        postgres.start()
        # ...and that it is back, by itself.
        wait_healthy(worker, timeout=90)
    finally:
        streaming.join(timeout=120)
        stack.wait_ready(timeout=90)
    assert len(enqueued) > 20
    # A connection made after the outage (the fixture's ended with it).
    with stack_database(autocommit=True) as db:
        deadline = time.monotonic() + 90
        while True:
            statuses = dict(
                db.execute(
                    f"SELECT id::text, status FROM {TASKS} WHERE id::text = ANY(%s)",
                    [enqueued],
                ).fetchall()
            )
            if len(statuses) == len(enqueued) and set(statuses.values()) == {"SUCCESSFUL"}:
                break
            assert time.monotonic() < deadline, f"not all ran: {json.dumps(statuses)[:500]}"
            time.sleep(0.5)


@pytest.mark.chaos
def test_a_failing_task_is_retried_with_backoff_then_kept_failed(stack, db):
    task_id = probe_enqueue(stack, failures=1000)
    row = wait_for(db, task_id, "FAILED", timeout=120)
    assert len(row["worker_ids"]) == settings.TASK_MAX_ATTEMPTS
    assert row["error"] == "apps.core.tasks.probes.ProbeFailure"
    retries = stack.log_records(
        "worker",
        task_id=task_id,
        level="WARNING",
        until=lambda r: len(r) >= settings.TASK_MAX_ATTEMPTS - 1,
    )
    assert len(retries) == settings.TASK_MAX_ATTEMPTS - 1
    assert stack.log_records("worker", task_id=task_id, level="ERROR")
