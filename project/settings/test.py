"""pytest: the real PostgreSQL and Redis from the environment, fast where it can be.

In `make test` the tests run in a container on the compose network, with
DATABASE_URL and REDIS_URL pointing at the stack's db and redis. pytest-django
creates and drops its own test database; the Redis tests use keys of their own.
"""

from django.core.management.utils import get_random_secret_key

from .base import *  # noqa: F403
from .base import CACHES, DATABASES, STORAGES

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

# Without the pool (DATABASE_POOL_SIZE, base.py), as a process kept its
# connections before it: a test holds one in the transaction that wraps it
# while the code under test (the test client's thread, a consumer) takes
# others, more than a stack's process is given; and pytest-django drops its
# database at the end, which connections left in a pool would refuse.
# apps/core/tests/test_database_limits.py tests a pool of its own.
if "pool" in DATABASES["default"].get("OPTIONS", {}):
    del DATABASES["default"]["OPTIONS"]["pool"]
    DATABASES["default"]["CONN_MAX_AGE"] = 60
