"""django-tasks-db's DatabaseBackend, which also keeps the id of the request
that enqueued each task, so that the task's log lines (and its Sentry event)
carry it: one request followed into the worker.

The id goes in the row's args_kwargs object, beside the task's own "args" and
"kwargs", which are all django-tasks-db reads of it: no column, no table, no
query of its own. The row is one INSERT in the caller's transaction, as
django-tasks-db writes it (the same fields; tests/ hold them in step).
"""

from django.utils.json import normalize_json
from django_tasks_db import backend
from django_tasks_db.models import DBTaskResult

from apps.core.request_id import request_context

REQUEST_ID = "request_id"


class DatabaseBackend(backend.DatabaseBackend):
    def _task_to_db_task(self, task, args, kwargs) -> DBTaskResult:
        args_kwargs = normalize_json({"args": args, "kwargs": kwargs})
        fields = request_context.get()
        if fields is not None and fields.get("request_id"):
            args_kwargs[REQUEST_ID] = fields["request_id"]
        return DBTaskResult.objects.create(
            id=self._get_id(),
            args_kwargs=args_kwargs,
            priority=task.priority,
            task_path=task.module_path,
            queue_name=task.queue_name,
            run_after=task.run_after,
            backend_name=self.alias,
        )

    async def _atask_to_db_task(self, task, args, kwargs) -> DBTaskResult:
        from asgiref.sync import sync_to_async

        return await sync_to_async(self._task_to_db_task)(task, args, kwargs)


def enqueuing_request_id(row: DBTaskResult) -> str | None:
    return row.args_kwargs.get(REQUEST_ID)
