"""Background tasks: Django's tasks framework (django.tasks), kept in
PostgreSQL, run by the `worker` service.

- backend.py: django-tasks-db's backend, noting which request enqueued a task;
- worker.py: the worker (`manage.py worker`): claims, runs, retries, takes
  over the tasks of workers that died, keeps the schedules, stops gracefully;
- schedules.py: periodic jobs (TASK_SCHEDULES), once a period, whatever the
  number of workers;
- jobs.py: the platform's own periodic jobs.
"""
