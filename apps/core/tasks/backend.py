"""django-tasks-db's DatabaseBackend, with a cheaper enqueue, that also keeps
the id of the request that enqueued each task, so that the task's log lines
(and its Sentry event) carry it: one request followed into the worker.

The id goes in the row's args_kwargs object, beside the task's own "args" and
"kwargs", which are all django-tasks-db reads of it: no column, no table, no
query of its own.

An enqueue is one INSERT, in the caller's transaction, of the row
django-tasks-db's would write (apps/core/tests/test_tasks_backend.py holds
the two alike), without its model's save() and without building the task's
result twice: about half the CPU, which every request that enqueues pays
(docs/performance.md, scenario 11).
"""

from typing import Any, cast

from django.db import connections, router
from django.tasks.base import TaskResultStatus
from django.tasks.signals import task_enqueued
from django.utils import timezone
from django.utils.json import normalize_json
from django_tasks_db import backend
from django_tasks_db.models import DBTaskResult, get_date_max
from psycopg.types.json import Jsonb

from apps.core.request_id import request_context

REQUEST_ID = "request_id"

INSERT = """
INSERT INTO {table} (id, status, enqueued_at, args_kwargs, priority, task_path, worker_ids,
                     queue_name, backend_name, run_after, exception_class_path, traceback)
VALUES (%s, %s, %s, %s, %s, %s, '[]', %s, %s, %s, '', '')
"""


class DatabaseBackend(backend.DatabaseBackend):
    def enqueue(self, task, args, kwargs) -> backend.TaskResult:
        self.validate_task(task)
        # A dict, as what it normalizes is one.
        args_kwargs = cast(dict[str, Any], normalize_json({"args": args, "kwargs": kwargs}))
        fields = request_context.get()
        if fields is not None and fields.get("request_id"):
            args_kwargs[REQUEST_ID] = fields["request_id"]
        row: DBTaskResult = DBTaskResult(
            id=self._get_id(),
            status=TaskResultStatus.READY,
            enqueued_at=timezone.now(),
            args_kwargs=args_kwargs,
            priority=task.priority,
            task_path=task.module_path,
            queue_name=task.queue_name,
            run_after=task.run_after or get_date_max(),
            backend_name=self.alias,
        )
        database = router.db_for_write(DBTaskResult)
        with connections[database].cursor() as cursor:
            cursor.execute(
                INSERT.format(table=DBTaskResult._meta.db_table),
                [
                    row.id,
                    row.status,
                    row.enqueued_at,
                    # psycopg's adapter, which django-stubs' parameter types leave out.
                    Jsonb(row.args_kwargs),  # type: ignore[list-item]
                    row.priority,
                    row.task_path,
                    row.queue_name,
                    row.backend_name,
                    row.run_after,
                ],
            )
        result: backend.TaskResult = backend.TaskResult(
            db_result=row,
            task=task,
            id=str(row.id),
            status=TaskResultStatus.READY,
            enqueued_at=row.enqueued_at,
            started_at=None,
            last_attempted_at=None,
            finished_at=None,
            args=args_kwargs["args"],
            kwargs=args_kwargs["kwargs"],
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        task_enqueued.send(type(self), task_result=result)
        return result

    async def aenqueue(self, task, args, kwargs) -> backend.TaskResult:
        from asgiref.sync import sync_to_async

        return await sync_to_async(self.enqueue)(task, args, kwargs)


def enqueuing_request_id(row: DBTaskResult) -> str | None:
    return row.args_kwargs.get(REQUEST_ID)
