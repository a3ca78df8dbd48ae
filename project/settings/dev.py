"""`python manage.py runserver` in a plain virtualenv: no variable is required.

SQLite and in-process memory stand in for PostgreSQL and Redis unless
DATABASE_URL and REDIS_URL say otherwise.
"""

from django.core.management.utils import get_random_secret_key

from .base import *  # noqa: F403
from .base import STORAGES, env

DEBUG = True

# A fresh key for each process unless one is given: nothing to leak, at the cost
# of logging out whenever runserver restarts.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=get_random_secret_key())

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

# No manifest to build while developing.
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
