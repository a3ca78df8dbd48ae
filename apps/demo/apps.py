from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo page: a visit counter, a chat, and uploads whose checksums the
    worker computes. A guest: nothing else depends on it, and `make
    remove-demo` takes it out."""

    name = "apps.demo"

    def ready(self):
        # Every process, the worker's included: once the worker has recorded
        # an upload's checksum, the uploader's page hears it (tasks.py).
        from django.tasks.signals import task_finished

        from .tasks import checksum_announce

        task_finished.connect(checksum_announce, dispatch_uid="checksum_announce")
