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


# --- make test and make chaos: a skip nobody asked for fails the run ------------
# pytest exits 0 when tests skip, so an end-to-end test that skipped itself (no
# stack address, no SCRATCH_DIR, no PostgreSQL) would pass the run unseen while
# proving nothing. The Makefile runs pytest with --no-skips; run by hand,
# pytest skips as usual.


def pytest_addoption(parser):
    parser.addoption(
        "--no-skips",
        action="store_true",
        help="fail the run when any test skips (make test, make chaos)",
    )


def pytest_sessionfinish(session, exitstatus):
    if not session.config.getoption("--no-skips"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reporter.write_sep("=", "skipped, and not asked for (--no-skips): the run fails")
        for report in skipped:
            reporter.write_line(f"{report.nodeid}: {report.longrepr[2]}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
