"""Development: `python manage.py runserver` in a virtualenv (manage.py's
default), and `make dev` (docker-compose.dev.yml). No variable is required.

SQLite and in-process memory stand in for PostgreSQL and Redis unless
DATABASE_URL and REDIS_URL say otherwise; `make dev` points them at the dev
stack's own.
"""

import os

from django.core.management.utils import get_random_secret_key

from .base import *  # noqa: F403
from .base import BASE_DIR, LOGGING, STORAGES, env

DEBUG = True


def dev_secret_key() -> str:
    """A key of this checkout's own, made on first use and kept in
    .dev-secret-key (git ignores it): sessions outlive the restarts runserver
    makes on every edit, and `make dev`'s two servers share it. Made aside and
    linked into place, so two servers starting at once agree on one key."""
    path = BASE_DIR / ".dev-secret-key"
    if not path.exists():
        made = path.with_name(f".dev-secret-key.{os.getpid()}")
        with os.fdopen(os.open(made, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
            file.write(get_random_secret_key())
        try:
            os.link(made, path)
        except FileExistsError:
            pass  # another server made one first: use it
        finally:
            made.unlink()
    return path.read_text()


SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or dev_secret_key()

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

# No manifest to build while developing.
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Lines for people to read, unless LOG_FORMAT says json (base.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="text")

# runserver logs every request; the probes' are left out: the containers'
# health checks and nginx's follower ask every few seconds, and would bury
# the requests you make.
PROBE_PATHS = {"/healthz", "/readyz"}
LOGGING = {
    **LOGGING,
    "formatters": {"project": {**LOGGING["formatters"]["project"], "log_format": LOG_FORMAT}},
    "filters": {
        **LOGGING["filters"],
        "no_probes": {
            "()": "django.utils.log.CallbackFilter",
            "callback": lambda record: (
                not (isinstance(record.args, dict) and record.args.get("path") in PROBE_PATHS)
            ),
        },
    },
    "loggers": {
        **LOGGING["loggers"],
        "django.channels.server": {"filters": ["no_probes"]},
        # runserver writes its own access lines (above); Daphne's, which the
        # stack writes in apps/core/request_id.py, would say each twice.
        "daphne.access": {"level": "WARNING"},
    },
}
