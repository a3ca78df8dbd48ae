"""The worker: runs the tasks apps enqueue with django.tasks, one at a time,
as many worker processes as the deployment runs (`manage.py worker`; the
`worker` service).

What it guarantees, and how:
- **Each task to one worker at a time.** A task is claimed by one statement
  that locks its row (SELECT ... FOR UPDATE SKIP LOCKED, as django-tasks-db's
  own worker does) and marks it RUNNING with this worker's id.
- **At least once.** Every worker writes its heartbeat (WorkerBeat) every
  BEAT_SECONDS, from a thread of its own, so a long task does not silence
  it. A worker silent for TASK_WORKER_LEASE_SECONDS is dead (SIGKILL, out of
  memory, a lost node), and any worker then puts the task it held back to
  READY: it runs again, on any worker. So tasks must be safe to repeat.
  A task whose worker dies TASK_MAX_ATTEMPTS times (or its own number, in
  TASK_MAX_ATTEMPTS_BY_TASK) is kept as failed.
- **Retries.** A task that raises is put back with run_after set
  TASK_RETRY_BASE_SECONDS * 2**(attempt - 1) later (at most
  TASK_RETRY_MAX_SECONDS); its last allowed attempt
  failing keeps it FAILED, with its error and traceback (the admin's "Task
  results"). An attempt longer than TASK_TIME_LIMIT_SECONDS is interrupted
  (SIGALRM) and fails.
- **A graceful stop.** SIGTERM or SIGINT: no new task is claimed, the one in
  hand finishes, and the process exits 0.
- **PostgreSQL away.** A failed claim is logged and tried again; the health
  file (HEALTH_FILE) shows PostgreSQL unreachable, so the container is
  unhealthy meanwhile, and healthy again once PostgreSQL answers. Nothing
  is lost: a task is a row, and a row not yet claimed is claimed later.
- **Prompt pickup, cheaply.** An idle worker asks for a task every
  POLL_SECONDS (an index lookup in PostgreSQL that finds nothing); a busy one
  asks again as soon as it finishes. A claim is one statement, and recording
  the outcome another: two round trips a task. Not LISTEN/NOTIFY: a
  transaction that NOTIFYs takes a lock for the whole cluster through its
  commit, which slowed every enqueuing request (docs/performance.md,
  scenario 11), and LISTEN does not work through a pooler in transaction
  mode.

Each task's log lines carry its id (task_id), its name (task), and the id of
the request that enqueued it (request_id), so `grep` of a request id
follows it from nginx into the worker.
"""

import contextlib
import logging
import os
import signal
import socket
import threading
import time
import traceback
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import Case, Count, F, Min, When
from django.db.models.functions import Greatest
from django.tasks.base import TaskContext, TaskResultStatus
from django.tasks.signals import task_finished, task_started
from django.utils import timezone
from django.utils.crypto import get_random_string
from django_tasks_db.models import DBTaskResult, get_date_max

from apps.core import metrics
from apps.core.models import WorkerBeat
from apps.core.request_id import request_context
from apps.core.sessions import CopyEvictor
from apps.core.tasks.backend import enqueuing_request_id
from apps.core.tasks.schedules import schedules_enqueue

logger = logging.getLogger(__name__)

BEAT_SECONDS = 3
POLL_SECONDS = 0.25
# How often the worker looks for dead workers' tasks and keeps the schedules.
CHORES_SECONDS = 5
# The ready task that comes first, in the order django-tasks-db's own worker
# takes them (DBTaskResult's Meta.ordering, which its partial index serves).
CLAIM = """
UPDATE {table}
   SET status = %(running)s,
       started_at = now(),
       worker_ids = worker_ids || to_jsonb(%(worker)s::text)
 WHERE id = (
        SELECT id FROM {table}
         WHERE status = %(ready)s
           AND (run_after = %(never)s OR run_after <= now())
           AND backend_name = %(backend)s {queues}
         ORDER BY priority DESC, run_after ASC, enqueued_at ASC
         LIMIT 1
           FOR UPDATE SKIP LOCKED)
RETURNING *
"""
# The container's health check reads this (deploy/healthcheck.sh worker).
HEALTH_FILE = Path("/tmp/worker-health")  # noqa: S108 (a tmpfs of the container's own)


class TaskTimeLimitExceeded(Exception):
    """The attempt ran longer than TASK_TIME_LIMIT_SECONDS."""


def retry_delay(attempt: int) -> timedelta:
    """How long after failed attempt number `attempt` (1, 2, ...) the next one
    runs: doubling each time, up to TASK_RETRY_MAX_SECONDS."""
    doubled = settings.TASK_RETRY_BASE_SECONDS * 2 ** min(attempt - 1, 30)
    return timedelta(seconds=min(doubled, settings.TASK_RETRY_MAX_SECONDS))


def max_attempts(name: str) -> int:
    """How many times the task may be tried (TASK_MAX_ATTEMPTS_BY_TASK, or
    TASK_MAX_ATTEMPTS)."""
    return settings.TASK_MAX_ATTEMPTS_BY_TASK.get(name, settings.TASK_MAX_ATTEMPTS)


class Worker:
    def __init__(self, *, worker_id: str | None = None, queues: list[str] | None = None):
        self.worker_id = worker_id or f"{socket.gethostname()[:40]}-{get_random_string(12)}"
        self.queues = queues
        self.stopping = threading.Event()
        # What the health file reports (written by the heartbeat thread).
        self.loop_at = time.time()
        self.task_started_at: float | None = None
        # Whether SIGALRM interrupts a task over its time limit (signals_handle).
        self.time_limited = False

    # --- Running -------------------------------------------------------------------

    def run(self) -> None:
        """Take tasks until asked to stop (stop(), SIGTERM, SIGINT)."""
        logger.info("worker %s starting", self.worker_id)
        beat = threading.Thread(target=self._beat_forever, name="heartbeat", daemon=True)
        beat.start()
        # Drops the Redis copies of sessions deleted from PostgreSQL, and
        # vouches for the rest (apps/core/sessions.py): a thread of every
        # worker, so that a running worker is all it needs.
        if CopyEvictor.enabled():
            evictor = CopyEvictor(self.stopping)
            threading.Thread(target=evictor.run, name="session-evictor", daemon=True).start()
        chores_due = 0.0
        while not self.stopping.is_set():
            self.loop_at = time.time()
            try:
                if time.monotonic() >= chores_due:
                    # As Django does between requests: a connection past
                    # CONN_MAX_AGE, or broken, is replaced (and the next
                    # query checks it, CONN_HEALTH_CHECKS). Not before every
                    # claim: that check is a round trip of its own.
                    close_old_connections()
                    self.chores()
                    chores_due = time.monotonic() + CHORES_SECONDS
                row = self.claim()
            except DatabaseError as error:
                logger.warning("PostgreSQL unreachable; trying again: %s", error)
                connection.close()
                self.stopping.wait(POLL_SECONDS)
                continue
            if row is not None:
                self.run_task(row)
            else:
                self.stopping.wait(POLL_SECONDS)
        # Its last beat and its connection end before the goodbye.
        beat.join(timeout=BEAT_SECONDS + 2)
        self.goodbye()

    def stop(self, *_signal) -> None:
        """No new task; the one in hand (if any) finishes first."""
        if not self.stopping.is_set():
            logger.info("worker %s stopping: finishing the task in hand, if any", self.worker_id)
        self.stopping.set()

    def signals_handle(self) -> None:
        """From the main thread (the command's): stop on SIGTERM and SIGINT,
        and enforce TASK_TIME_LIMIT_SECONDS with SIGALRM, which Python
        delivers to the main thread, where tasks run."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGALRM, self._time_limit_exceeded)
        self.time_limited = True

    def goodbye(self) -> None:
        # Failing that, its heartbeat goes stale: the same, a lease later.
        with contextlib.suppress(DatabaseError):
            WorkerBeat.objects.filter(worker_id=self.worker_id).delete()
        connection.close()
        logger.info("worker %s stopped", self.worker_id)

    # --- One task ------------------------------------------------------------------

    def claim(self) -> DBTaskResult | None:
        """The next task ready to run, marked RUNNING by this worker; None if
        none. One statement: the row is found, locked (skipping rows another
        worker is claiming), and marked, as django-tasks-db's claim() marks it."""
        queues = "AND queue_name = ANY(%(queues)s)" if self.queues else ""
        sql = CLAIM.format(table=DBTaskResult._meta.db_table, queues=queues)
        params = {
            "ready": TaskResultStatus.READY,
            "running": TaskResultStatus.RUNNING,
            "never": get_date_max(),
            "backend": "default",
            "worker": self.worker_id,
            "queues": self.queues,
        }
        return next(iter(DBTaskResult.objects.raw(sql, params)), None)

    def run_task(self, row: DBTaskResult) -> None:
        attempt = len(row.worker_ids)
        fields = {"request_id": enqueuing_request_id(row), "task_id": str(row.id)}
        token = request_context.set(fields)
        started = time.monotonic()
        name = fields["task"] = row.task_name
        try:
            result = row.task_result  # imports the task: an ImportError fails the attempt
            task = result.task
            metrics.tasks_started.labels(name).inc()
            # Django's own receivers log "Task id=... state=RUNNING" (and
            # SUCCESSFUL or FAILED, with the traceback, at the end).
            signal_send(task_started, result)
            self.task_started_at = time.time()
            if self.time_limited:
                signal.setitimer(signal.ITIMER_REAL, settings.TASK_TIME_LIMIT_SECONDS)
            try:
                if task.takes_context:
                    value = task.call(
                        TaskContext(task_result=result), *result.args, **result.kwargs
                    )
                else:
                    value = task.call(*result.args, **result.kwargs)
            finally:
                if self.time_limited:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                self.task_started_at = None
        except Exception as error:
            self.task_failed(row, name, attempt, error)
        else:
            self.task_succeeded(row, name, value)
        finally:
            metrics.task_duration.labels(name).observe(time.monotonic() - started)
            request_context.reset(token)

    def _time_limit_exceeded(self, *_signal):
        raise TaskTimeLimitExceeded(
            "the task ran longer than TASK_TIME_LIMIT_SECONDS "
            f"({settings.TASK_TIME_LIMIT_SECONDS} s)"
        )

    def _finish(self, row: DBTaskResult, **fields) -> bool:
        """Write the attempt's outcome, if the task is still this worker's
        (another may have taken it over, had this one gone silent): whether it was."""
        for _ in range(30):  # PostgreSQL may be restarting: the outcome must not be lost
            try:
                mine = DBTaskResult.objects.filter(
                    id=row.id, status=TaskResultStatus.RUNNING, worker_ids=row.worker_ids
                )
                if not mine.update(**fields):
                    return False
                for name, value in fields.items():
                    setattr(row, name, value)
                return True
            except DatabaseError as error:
                logger.warning("could not record the task's outcome; trying again: %s", error)
                connection.close()
                time.sleep(1)
        raise RuntimeError("PostgreSQL did not answer for 30 s: the task will run again")

    def task_succeeded(self, row: DBTaskResult, name: str, value) -> None:
        recorded = self._finish(
            row,
            status=TaskResultStatus.SUCCESSFUL,
            finished_at=timezone.now(),
            return_value=value,
            exception_class_path="",
            traceback="",
        )
        if recorded:
            metrics.tasks_succeeded.labels(name).inc()
            signal_send(task_finished, row.task_result)
        else:
            logger.warning("task %s succeeded, but another worker had taken it over", name)

    def task_failed(self, row: DBTaskResult, name: str, attempt: int, error: Exception) -> None:
        error_fields = {
            "exception_class_path": f"{type(error).__module__}.{type(error).__qualname__}",
            "traceback": "".join(traceback.format_exception(error)),
        }
        if attempt < max_attempts(name):
            delay = retry_delay(attempt)
            if self._finish(
                row,
                status=TaskResultStatus.READY,
                run_after=timezone.now() + delay,
                started_at=None,
                **error_fields,
            ):
                metrics.tasks_retried.labels(name).inc()
                logger.warning(
                    "task %s failed (attempt %d of %d); trying again in %s s",
                    name,
                    attempt,
                    max_attempts(name),
                    delay.total_seconds(),
                    exc_info=error,
                )
            return
        if self._finish(
            row,
            status=TaskResultStatus.FAILED,
            finished_at=timezone.now(),
            return_value=None,
            **error_fields,
        ):
            metrics.tasks_failed.labels(name).inc()
            error_report(error, task=name)
            # A task whose code is gone (ImportError) has nobody to tell.
            with contextlib.suppress(ImportError):
                signal_send(task_finished, row.task_result)

    # --- Chores: dead workers' tasks, the schedules, the queue's gauges -------------

    def chores(self) -> None:
        self.take_over_lost()
        schedules_enqueue()

    def take_over_lost(self) -> int:
        """Put the tasks of dead workers back to run again: how many."""
        cutoff = timezone.now() - timedelta(seconds=settings.TASK_WORKER_LEASE_SECONDS)
        alive = set(
            WorkerBeat.objects.filter(seen_at__gte=cutoff).values_list("worker_id", flat=True)
        )
        taken = 0
        with transaction.atomic():
            running = DBTaskResult.objects.running().select_for_update(skip_locked=True)
            for row in running.filter(started_at__lt=cutoff):
                if row.worker_ids and row.worker_ids[-1] in alive:
                    continue
                name = row.task_name
                if len(row.worker_ids) >= max_attempts(name):
                    row.status = TaskResultStatus.FAILED
                    row.finished_at = timezone.now()
                    row.exception_class_path = "apps.core.tasks.worker.WorkerLost"
                    row.traceback = (
                        f"The worker running attempt {len(row.worker_ids)} stopped answering; "
                        "no attempts are left."
                    )
                    row.save(
                        update_fields=["status", "finished_at", "exception_class_path", "traceback"]
                    )
                    metrics.tasks_failed.labels(name).inc()
                    logger.error(
                        "task %s: its worker died on its last attempt",
                        name,
                        extra={"task_id": str(row.id), "task": name},
                    )
                else:
                    row.status = TaskResultStatus.READY
                    row.run_after = timezone.now()
                    row.started_at = None
                    row.save(update_fields=["status", "run_after", "started_at"])
                    metrics.tasks_taken_over.labels(name).inc()
                    logger.warning(
                        "task %s: worker %s died running it; it will run again",
                        name,
                        row.worker_ids[-1] if row.worker_ids else None,
                        extra={"task_id": str(row.id), "task": name},
                    )
                taken += 1
        # Workers gone a day: their rows are history.
        WorkerBeat.objects.filter(seen_at__lt=timezone.now() - timedelta(days=1)).delete()
        return taken

    def queue_measure(self) -> None:
        """The queue's gauges: the tasks ready and not started, and how long
        the one ready the longest has been (the TasksNotDraining alert's)."""
        now = timezone.now()
        # Ready since it was enqueued, or since its run_after came if later (a
        # retry, a task enqueued to run later). A task enqueued with no
        # run_after has django-tasks-db's far-future date in it: ready since
        # it was enqueued. (Not the first row by run_after: that puts every
        # retry ahead of the tasks that have none, however long they waited.)
        ready_since = Case(
            When(run_after=get_date_max(), then=F("enqueued_at")),
            default=Greatest(F("enqueued_at"), F("run_after")),
        )
        queue = DBTaskResult.objects.ready().aggregate(waiting=Count("pk"), oldest=Min(ready_since))
        metrics.tasks_waiting.set(queue["waiting"])
        oldest = queue["oldest"]
        age = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
        metrics.tasks_oldest_waiting_age.set(age)

    # --- The heartbeat thread -------------------------------------------------------

    def _beat_forever(self) -> None:
        started = timezone.now()
        host = socket.gethostname()
        while not self.stopping.is_set():
            try:
                WorkerBeat.objects.update_or_create(
                    worker_id=self.worker_id,
                    defaults={"seen_at": timezone.now(), "host": host},
                    create_defaults={
                        "seen_at": timezone.now(),
                        "host": host,
                        "started_at": started,
                    },
                )
                if settings.METRICS_PORT:
                    self.queue_measure()
                beat_ok = time.time()
            except DatabaseError as error:
                logger.warning("heartbeat: PostgreSQL unreachable: %s", error)
                connection.close()
                beat_ok = None
            self.health_write(beat_ok)
            self.stopping.wait(BEAT_SECONDS)
        connection.close()

    def health_write(self, beat_ok: float | None) -> None:
        """The health check's input (deploy/healthcheck.sh worker): until when
        the worker is healthy, in whole seconds since the epoch, then why.
        Healthy while PostgreSQL answered the last beat, the loop turned
        recently (or the task in hand is within its time limit), and this
        heartbeat is fresh: the check itself, run every few seconds, only
        compares the time with this number."""
        now = time.time()
        if beat_ok is None:
            healthy_until, why = 0.0, "PostgreSQL did not answer the last heartbeat"
        elif self.task_started_at is not None:
            started = self.task_started_at
            healthy_until = started + settings.TASK_TIME_LIMIT_SECONDS + 10
            why = f"a task in hand for {now - started:.0f} s"
        else:
            healthy_until = self.loop_at + POLL_SECONDS + CHORES_SECONDS + 10
            why = f"the loop turned {now - self.loop_at:.0f} s ago"
        healthy_until = min(healthy_until, now + BEAT_SECONDS * 3)
        state = f"{int(healthy_until)} {why}\n"
        partial = HEALTH_FILE.with_suffix(".partial")
        try:
            partial.write_text(state)
            os.replace(partial, HEALTH_FILE)
        except OSError as error:
            logger.warning("could not write %s: %s", HEALTH_FILE, error)


def signal_send(signal, task_result) -> None:
    """django.tasks' task_started or task_finished, to every receiver: one
    that raises (an app's) is logged by Django (django.dispatch), and stops
    neither the others nor the worker, nor changes the task's outcome, which
    is recorded already."""
    signal.send_robust(sender=type(task_result.task.get_backend()), task_result=task_result)


def error_report(error: Exception, **tags: str) -> None:
    """To Sentry, when it is on (project/sentry.py), with the task's and the
    enqueuing request's ids as tags."""
    if not settings.SENTRY_DSN:
        return
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        fields = request_context.get() or {}
        for name, value in {**fields, **tags}.items():
            if value is not None and name in ("request_id", "task_id", "task"):
                scope.set_tag(name, value)
        sentry_sdk.capture_exception(error)
