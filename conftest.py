import os

import pytest

# The running stack (tests/stack.py), for the end-to-end tests of every app.
pytest_plugins = ["tests.stack"]


def pytest_configure(config):
    # The tests exercise the real PostgreSQL and Redis; without them they would
    # quietly test SQLite and in-process memory instead.
    missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(name)]
    if missing:
        pytest.exit(
            f"{' and '.join(missing)} unset: run the tests with `make test`, which "
            "starts PostgreSQL and Redis and runs pytest beside them.",
            returncode=2,
        )


@pytest.fixture
def sessions_redis_down():
    """Use as `with sessions_redis_down:`. Inside, the sessions cache points
    where nothing listens, so every connection is refused, as when Redis is down."""
    from django.conf import settings
    from django.test import override_settings

    unreachable = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/1",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1, "IGNORE_EXCEPTIONS": True},
    }
    return override_settings(CACHES={**settings.CACHES, "sessions": unreachable})
