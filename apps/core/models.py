"""The platform's own tables: the workers' heartbeats and the schedules'
progress (apps/core/tasks/). Tasks themselves are django-tasks-db's."""

from django.db import models


class WorkerBeat(models.Model):
    """A running worker: it updates seen_at every few seconds. One silent for
    TASK_WORKER_LEASE_SECONDS is dead, and the tasks it held run again."""

    worker_id = models.CharField(primary_key=True, max_length=64)
    host = models.CharField(max_length=255)
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(db_index=True)

    def __str__(self):
        return f"{self.worker_id} on {self.host}"


class ScheduledJob(models.Model):
    """A periodic job of TASK_SCHEDULES: the start of the last period whose
    run has been enqueued. Moving it on and enqueueing the run happen in one
    transaction, by whichever worker gets there first."""

    name = models.CharField(primary_key=True, max_length=100)
    last_period = models.DateTimeField(null=True)
    last_enqueued_at = models.DateTimeField(null=True)

    def __str__(self):
        return self.name
