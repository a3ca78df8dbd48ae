"""pytest: the real PostgreSQL and Redis from the environment, fast where it can be.

In `make test` the tests run in a container on the compose network, with
DATABASE_URL and REDIS_URL pointing at the stack's db and redis. pytest-django
creates and drops its own test database; the Redis tests use keys of their own.
"""

from django.core.management.utils import get_random_secret_key

from .base import *  # noqa: F403
from .base import CACHES, STORAGES

SECRET_KEY = get_random_secret_key()

# "testserver" is the Host of Django's test client; localhost is what
# WebsocketCommunicator's tests send as Origin.
ALLOWED_HOSTS = ["testserver", "localhost"]

# Hashing passwords slowly is the point in production and a waste in tests.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Templates render {% static %} without a collected manifest.
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# The session copies of the tests' own database (pytest-django's test_app) go
# to a Redis database of their own: the stack's worker vouches for the copies
# of the stack's database (apps/core/sessions.py), never for these.
if "sessions" in CACHES:
    CACHES["sessions"]["LOCATION"] = CACHES["sessions"]["LOCATION"].rsplit("/", 1)[0] + "/3"
