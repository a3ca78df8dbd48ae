"""The platform's periodic jobs (TASK_SCHEDULES in project/settings/base.py).
Each is safe to run twice, or late: it deletes what has expired by then."""

from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.tasks import task
from django.utils import timezone
from django_tasks_db.models import DBTaskResult


@task
def sessions_clear() -> None:
    """Expired sessions' rows, as `manage.py clearsessions` deletes them."""
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()


@task
def task_results_prune() -> int:
    """Finished tasks older than TASK_RESULTS_KEEP_DAYS: how many were deleted."""
    before = timezone.now() - timedelta(days=settings.TASK_RESULTS_KEEP_DAYS)
    deleted, _ = DBTaskResult.objects.finished().filter(finished_at__lt=before).delete()
    return deleted
