"""Periodic jobs, declared once in TASK_SCHEDULES (project/settings/base.py),
kept by every worker: each run is enqueued once per period, however many
workers there are, and once after a downtime that missed one.

Periods are aligned to the epoch (a daily job's period starts each midnight,
UTC). Each job has a row (ScheduledJob) holding the start of the last period
enqueued. A worker moves it on with one conditional UPDATE and enqueues the
run in the same transaction: of workers that try at once, PostgreSQL lets one
UPDATE match; the others match nothing and enqueue nothing. A job whose
period passed while no worker ran is enqueued once when one starts: the
missed periods are not each run (every job here cleans up what has expired
by then, which one run does).
"""

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string

from apps.core.models import ScheduledJob

logger = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def period_start(now: datetime, every: timedelta) -> datetime:
    """The start of the period of length `every` that `now` falls in."""
    return now - (now - EPOCH) % every


def schedules_enqueue(now: datetime | None = None) -> list[str]:
    """Enqueue each job whose current period has no run yet: the names of
    those this call enqueued."""
    now = now or timezone.now()
    enqueued = []
    # Each job's row, if this is its first run: one statement for all.
    ScheduledJob.objects.bulk_create(
        [ScheduledJob(name=name) for name in settings.TASK_SCHEDULES], ignore_conflicts=True
    )
    for name, job in settings.TASK_SCHEDULES.items():
        period = period_start(now, job["every"])
        with transaction.atomic():
            claimed = (
                ScheduledJob.objects.filter(name=name)
                .filter(Q(last_period__isnull=True) | Q(last_period__lt=period))
                .update(last_period=period, last_enqueued_at=now)
            )
            if claimed:
                import_string(job["task"]).enqueue()
                enqueued.append(name)
    for name in enqueued:
        logger.info("scheduled job %s enqueued", name)
    return enqueued
