"""The backend (apps/core/tasks/backend.py) writes the row django-tasks-db's
own would, with the enqueuing request's id beside the arguments."""

import pytest
from django.db import transaction
from django.forms.models import model_to_dict
from django.tasks.base import TaskResultStatus
from django_tasks_db.backend import DatabaseBackend as TasksDbBackend
from django_tasks_db.models import DBTaskResult

from apps.core.request_id import request_context
from apps.core.tasks.probes import probe

pytestmark = pytest.mark.django_db

# What differs between any two enqueues.
OWN = {"id", "enqueued_at"}


def written(result) -> dict:
    row = DBTaskResult.objects.get(id=result.id)
    return {name: value for name, value in model_to_dict(row).items() if name not in OWN}


def test_its_row_is_django_tasks_dbs_row():
    ours = probe.using(priority=5, queue_name="default").enqueue(seconds=1.5, failures=2)
    theirs = TasksDbBackend("default", {}).enqueue(
        probe.using(priority=5, queue_name="default"), [], {"seconds": 1.5, "failures": 2}
    )
    assert written(ours) == written(theirs)
    assert written(ours)["status"] == TaskResultStatus.READY


def test_the_result_it_returns_reads_back_the_same():
    result = probe.enqueue(seconds=0.5)
    again = probe.get_result(result.id)
    for name in ("id", "status", "args", "kwargs", "backend", "worker_ids", "enqueued_at"):
        assert getattr(result, name) == getattr(again, name), name


def test_the_enqueuing_requests_id_is_kept_and_only_then():
    token = request_context.set({"request_id": "abc-123"})
    try:
        during = probe.enqueue()
    finally:
        request_context.reset(token)
    outside = probe.enqueue()
    assert DBTaskResult.objects.get(id=during.id).args_kwargs["request_id"] == "abc-123"
    assert "request_id" not in DBTaskResult.objects.get(id=outside.id).args_kwargs
    # The task's own arguments are untouched by it.
    assert probe.get_result(during.id).kwargs == {}


def test_an_enqueue_is_part_of_the_callers_transaction():
    with pytest.raises(RuntimeError), transaction.atomic():
        result = probe.enqueue()
        assert DBTaskResult.objects.filter(id=result.id).exists()
        raise RuntimeError
    assert not DBTaskResult.objects.filter(id=result.id).exists()
