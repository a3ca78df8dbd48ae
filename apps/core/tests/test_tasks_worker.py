"""The worker (apps/core/tasks/worker.py), one step at a time, against the
real PostgreSQL: transactions decide what runs, failures are retried then
kept, a dead worker's task runs again, a slow one is cut off, a stop waits
for the task in hand."""

import logging
import signal
import threading
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.tasks.base import TaskResultStatus
from django.test import override_settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from apps.core.models import WorkerBeat
from apps.core.request_id import request_context
from apps.core.tasks.probes import probe
from apps.core.tasks.worker import TaskTimeLimitExceeded, Worker, retry_delay

pytestmark = pytest.mark.django_db(transaction=True)


def row_of(result) -> DBTaskResult:
    return DBTaskResult.objects.get(id=result.id)


def run_next(worker: Worker) -> DBTaskResult | None:
    """Claim the next ready task and run it, as one turn of the loop does."""
    row = worker.claim()
    if row is not None:
        worker.run_task(row)
        row.refresh_from_db()
    return row


# --- What runs: the enqueuing transaction decides ------------------------------------


def test_a_task_enqueued_in_a_rolled_back_transaction_never_runs():
    with pytest.raises(RuntimeError), transaction.atomic():
        probe.enqueue()
        raise RuntimeError("the request failed")
    assert not DBTaskResult.objects.exists()
    assert run_next(Worker()) is None


def test_a_task_enqueued_in_a_committed_transaction_runs_and_its_result_is_kept():
    with transaction.atomic():
        result = probe.enqueue()
    row = run_next(Worker())
    assert row.id == row_of(result).id
    assert row.status == TaskResultStatus.SUCCESSFUL
    result.refresh()
    assert result.return_value == {"attempt": 1}


def test_a_task_is_claimed_by_one_worker_only():
    probe.enqueue()
    first, second = Worker(), Worker()
    claimed = first.claim()
    assert claimed is not None
    assert second.claim() is None
    assert row_of(claimed).worker_ids == [first.worker_id]


# --- Failures: retried with backoff, then kept as failed -----------------------------


@override_settings(TASK_MAX_ATTEMPTS=3, TASK_RETRY_BASE_SECONDS=10)
def test_a_failing_task_is_retried_later_with_backoff():
    result = probe.enqueue(failures=1)
    before = timezone.now()
    row = run_next(Worker())
    assert row.status == TaskResultStatus.READY
    assert row.exception_class_path == "apps.core.tasks.probes.ProbeFailure"
    assert "fails on purpose" in row.traceback
    # Not ready again until its backoff has passed.
    assert row.run_after >= before + timedelta(seconds=10)
    assert run_next(Worker()) is None
    DBTaskResult.objects.filter(id=result.id).update(run_after=timezone.now())
    row = run_next(Worker())
    assert row.status == TaskResultStatus.SUCCESSFUL
    assert row.return_value == {"attempt": 2}
    assert len(row.worker_ids) == 2


@override_settings(TASK_RETRY_BASE_SECONDS=2)
def test_the_backoff_doubles():
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4)] == [2, 4, 8, 16]


@override_settings(TASK_MAX_ATTEMPTS=3, TASK_RETRY_BASE_SECONDS=0)
def test_a_task_that_keeps_failing_is_kept_as_failed_with_its_error():
    result = probe.enqueue(failures=99)
    for _ in range(3):
        row = run_next(Worker())
    assert row.status == TaskResultStatus.FAILED
    assert row.finished_at is not None
    assert run_next(Worker()) is None
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.attempts == 3
    assert result.errors[0].exception_class_path == "apps.core.tasks.probes.ProbeFailure"


@override_settings(TASK_TIME_LIMIT_SECONDS=1, TASK_MAX_ATTEMPTS=1)
def test_a_task_over_its_time_limit_is_interrupted_and_fails():
    probe.enqueue(seconds=30)
    worker = Worker()
    previous = signal.getsignal(signal.SIGALRM)
    worker.signals_handle()
    try:
        started = time.monotonic()
        row = run_next(worker)
    finally:
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, signal.default_int_handler)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - started < 10
    assert row.status == TaskResultStatus.FAILED
    assert row.exception_class_path == (
        f"{TaskTimeLimitExceeded.__module__}.{TaskTimeLimitExceeded.__qualname__}"
    )


# --- Dead workers: their tasks run again ------------------------------------------------


def claimed_long_ago(worker: Worker, *, seconds: float) -> DBTaskResult:
    row = worker.claim()
    assert row is not None, "no task was ready"
    DBTaskResult.objects.filter(id=row.id).update(
        started_at=timezone.now() - timedelta(seconds=seconds)
    )
    return row


@override_settings(TASK_WORKER_LEASE_SECONDS=15)
def test_a_task_whose_worker_went_silent_runs_again():
    result = probe.enqueue()
    dead = Worker()
    claimed_long_ago(dead, seconds=60)  # and it never wrote a heartbeat since
    alive = Worker()
    assert alive.take_over_lost() == 1
    assert row_of(result).status == TaskResultStatus.READY
    row = run_next(alive)
    assert row.status == TaskResultStatus.SUCCESSFUL
    assert row.worker_ids == [dead.worker_id, alive.worker_id]
    assert row.return_value == {"attempt": 2}


@override_settings(TASK_WORKER_LEASE_SECONDS=15)
def test_a_task_whose_worker_still_beats_is_left_alone():
    result = probe.enqueue()
    busy = Worker()
    claimed_long_ago(busy, seconds=60)  # a long task...
    now = timezone.now()
    WorkerBeat.objects.create(worker_id=busy.worker_id, host="h", started_at=now, seen_at=now)
    assert Worker().take_over_lost() == 0  # ...on a worker that is alive
    assert row_of(result).status == TaskResultStatus.RUNNING


@override_settings(TASK_WORKER_LEASE_SECONDS=15, TASK_MAX_ATTEMPTS=1)
def test_a_task_whose_worker_died_on_its_last_attempt_is_kept_as_failed():
    result = probe.enqueue()
    claimed_long_ago(Worker(), seconds=60)
    assert Worker().take_over_lost() == 1
    row = row_of(result)
    assert row.status == TaskResultStatus.FAILED
    assert row.exception_class_path == "apps.core.tasks.worker.WorkerLost"


@override_settings(TASK_WORKER_LEASE_SECONDS=15)
def test_a_worker_taken_over_does_not_overwrite_the_new_attempt():
    result = probe.enqueue()
    slow = Worker()
    row = claimed_long_ago(slow, seconds=60)
    Worker().take_over_lost()
    other = Worker()
    assert other.claim() is not None
    # The silent worker comes back and finishes: its outcome is dropped.
    slow.task_succeeded(row, "probe", {"attempt": 1})
    now = row_of(result)
    assert now.status == TaskResultStatus.RUNNING
    assert now.worker_ids[-1] == other.worker_id


# --- Logs: a task's lines carry its id and its request's --------------------------------


def test_a_tasks_log_lines_carry_its_id_and_the_enqueuing_requests(caplog):
    token = request_context.set({"request_id": "req-123", "method": "POST", "path": "/"})
    try:
        result = probe.enqueue()
    finally:
        request_context.reset(token)
    logged = logging.getLogger("apps.core.tests.probe")
    with caplog.at_level(logging.INFO):
        run_next(Worker())
        logged.info("after the task")
    during = [r for r in caplog.records if r.name == "django.tasks"]
    assert during, caplog.text
    assert {(r.request_id, r.task_id) for r in during} == {("req-123", str(result.id))}
    # Not on lines written after it.
    assert getattr(caplog.records[-1], "task_id", None) is None


# --- Stopping: the task in hand finishes first ------------------------------------------


def test_a_stop_lets_the_task_in_hand_finish_and_takes_no_other():
    first = probe.enqueue(seconds=2)
    second = probe.enqueue()
    worker = Worker()
    runner = threading.Thread(target=worker.run)
    runner.start()
    deadline = time.monotonic() + 30
    while row_of(first).status != TaskResultStatus.RUNNING:
        assert time.monotonic() < deadline, "the worker never started the task"
        time.sleep(0.05)
    worker.stop()
    runner.join(timeout=30)
    assert not runner.is_alive()
    assert row_of(first).status == TaskResultStatus.SUCCESSFUL
    assert row_of(second).status == TaskResultStatus.READY
    assert not WorkerBeat.objects.filter(worker_id=worker.worker_id).exists()


def test_a_receiver_that_raises_changes_no_outcome_and_stops_no_worker(caplog):
    from django.tasks.signals import task_finished, task_started

    def broken(**kwargs):
        raise RuntimeError("an app's receiver is broken")

    task_started.connect(broken)
    task_finished.connect(broken)
    try:
        result = probe.enqueue()
        with caplog.at_level(logging.ERROR):
            row = run_next(Worker())
    finally:
        task_started.disconnect(broken)
        task_finished.disconnect(broken)
    assert row.status == TaskResultStatus.SUCCESSFUL
    assert row_of(result).return_value == {"attempt": 1}
    logged = [r for r in caplog.records if r.name == "django.dispatch"]
    assert [r.exc_info[1].args for r in logged] == [("an app's receiver is broken",)] * 2
