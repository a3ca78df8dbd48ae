"""`manage.py worker`: run background tasks until SIGTERM (apps/core/tasks/worker.py)."""

from argparse import BooleanOptionalAction

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import autoreload

from apps.core.tasks.worker import Worker


class Command(BaseCommand):
    help = "Run the tasks apps enqueue (django.tasks), and the periodic jobs, until stopped."

    def add_arguments(self, parser):
        parser.add_argument(
            "--queue",
            action="append",
            dest="queues",
            help="Only this queue's tasks (repeat for more); every queue's by default.",
        )
        parser.add_argument(
            "--reload",
            action=BooleanOptionalAction,
            default=settings.DEBUG,
            help="Restart when the code changes, as runserver does (default: DEBUG).",
        )

    def handle(self, *args, queues=None, reload=False, **options):
        worker = Worker(queues=queues)
        if reload:
            # For development only. Django's reloader runs the worker in a
            # thread of its own and keeps the main thread, and the signals,
            # for itself: a change ends the process, and a task in hand with
            # it (it runs again); no time limit is enforced, and no metrics
            # served.
            autoreload.run_with_reloader(worker.run)
            return
        if settings.METRICS_PORT:
            from apps.core.metrics import metrics_serve

            metrics_serve(port=settings.METRICS_PORT, multiprocess=False)
        worker.signals_handle()
        worker.run()
