from django.apps import AppConfig
from django.core.signals import request_finished


class CoreConfig(AppConfig):
    """The platform every app stands on: sessions, the client's address, health
    and draining, the database-down answer, the WebSocket consumer base and the
    base template. project/ holds configuration; this holds the code it names."""

    name = "apps.core"

    def ready(self):
        # The request being served is in every log line until its response
        # has gone (apps/core/request_id.py).
        from .request_id import request_context_clear

        request_finished.connect(request_context_clear, dispatch_uid="request_context_clear")

        # `check --deploy` warns when no mail is sent (apps/core/mail.py).
        # Tasks enqueued, by name, wherever they are enqueued (apps/core/metrics.py).
        from django.conf import settings

        from . import mail  # noqa: F401

        if settings.METRICS_PORT:
            from django.tasks.signals import task_enqueued

            from .metrics import task_enqueued_count

            task_enqueued.connect(task_enqueued_count, dispatch_uid="task_enqueued_count")
