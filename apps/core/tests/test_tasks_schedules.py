"""Periodic jobs (apps/core/tasks/schedules.py): once a period, however many
workers keep the schedule, and once after a downtime that missed periods."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django_tasks_db.models import DBTaskResult

from apps.core.tasks.schedules import period_start, schedules_enqueue

pytestmark = pytest.mark.django_db(transaction=True)

HOURLY = {"probe": {"task": "apps.core.tasks.probes.probe", "every": timedelta(hours=1)}}
NOON = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def runs() -> int:
    return DBTaskResult.objects.filter(task_path="apps.core.tasks.probes.probe").count()


def test_periods_start_on_the_epochs_grid():
    assert period_start(NOON + timedelta(minutes=59), timedelta(hours=1)) == NOON
    assert period_start(NOON, timedelta(days=1)) == NOON.replace(hour=0)


@override_settings(TASK_SCHEDULES=HOURLY)
def test_a_job_runs_once_a_period():
    assert schedules_enqueue(NOON) == ["probe"]
    assert schedules_enqueue(NOON + timedelta(minutes=30)) == []
    assert schedules_enqueue(NOON + timedelta(hours=1)) == ["probe"]
    assert runs() == 2


@override_settings(TASK_SCHEDULES=HOURLY)
def test_missed_periods_run_once_when_a_worker_is_back():
    schedules_enqueue(NOON)
    # Down for a day: 24 periods missed, one run to catch up.
    assert schedules_enqueue(NOON + timedelta(days=1, minutes=5)) == ["probe"]
    assert schedules_enqueue(NOON + timedelta(days=1, minutes=6)) == []
    assert runs() == 2


@override_settings(TASK_SCHEDULES=HOURLY)
def test_workers_keeping_the_schedule_at_once_enqueue_it_once():
    schedules_enqueue(NOON)
    start = threading.Barrier(8)
    outcomes = []

    def worker():
        try:
            start.wait()
            outcomes.append(schedules_enqueue(NOON + timedelta(hours=1)))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [[]] * 7 + [["probe"]]
    assert runs() == 2
