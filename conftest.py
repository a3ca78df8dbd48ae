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
