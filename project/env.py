"""The one place that reads the environment.

Every settings module (and deploy/gunicorn.conf.py) imports `env` from here;
nothing else reads os.environ. Each variable is a row of docs/configuration.md's
table, and project/tests/test_settings.py keeps the two in step.

`<NAME>_FILE` is read too: when it is set, the value comes from that file. Compose
and Kubernetes give every secret so (the secret key, the PostgreSQL and Redis
passwords: docs/configuration.md), from the same files. A file that cannot be
read stops start-up with ImproperlyConfigured naming the variable and the file.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


class SecretFiles(environ.FileAwareMapping):
    """django-environ's <NAME>_FILE reading, with a missing or unreadable file
    named with its variable: environ's own error names the file alone."""

    def __getitem__(self, key: str) -> str:
        try:
            return super().__getitem__(key)
        except OSError as error:
            raise ImproperlyConfigured(
                f"{key}_FILE is {error.filename}, which cannot be read: {error.strerror}."
            ) from error


class FileAwareEnv(environ.FileAwareEnv):
    ENVIRON = SecretFiles()


env = FileAwareEnv()
