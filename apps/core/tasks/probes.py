"""The background path's own check, as /ws/ping/ is the WebSocket path's: a
task that does nothing of consequence, for the tests (and an operator) to
enqueue and watch run. Safe to run any number of times.

    docker compose exec web python manage.py shell -c \
        "from apps.core.tasks.probes import probe; print(probe.enqueue().id)"
"""

import time

from django.tasks import TaskContext, task


class ProbeFailure(Exception):
    """Raised on purpose, to show a failing task retried, then kept as failed."""


@task(takes_context=True)
def probe(context: TaskContext, seconds: float = 0.0, failures: int = 0) -> dict:
    """Sleep `seconds`, fail the first `failures` attempts, then return which
    attempt succeeded."""
    time.sleep(seconds)
    if context.attempt <= failures:
        raise ProbeFailure(f"attempt {context.attempt} fails on purpose ({failures} will)")
    return {"attempt": context.attempt}
