"""deploy/gunicorn.conf.py: valid for Gunicorn, and sized from the environment."""

import os
import subprocess
import sys

import pytest

from project.env import BASE_DIR


def gunicorn(option: str, **env) -> subprocess.CompletedProcess:
    """Gunicorn with the project's config and `option` (which also loads the app,
    under the test settings), WEB_CONCURRENCY as given."""
    env = {k: v for k, v in os.environ.items() if k != "WEB_CONCURRENCY"} | env
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py", option,
         "project.wsgi:application"],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def gunicorn_setting(name: str, **env) -> str:
    result = gunicorn("--print-config", **env)
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == name:
            return value.strip()
    raise AssertionError(f"gunicorn printed no {name!r}")


def test_config_is_valid():
    result = gunicorn("--check-config")
    assert result.returncode == 0, result.stderr


def test_web_concurrency_sets_the_worker_count():
    assert gunicorn_setting("workers", WEB_CONCURRENCY="3") == "3"


@pytest.mark.parametrize("value", [None, "0"], ids=["unset", "zero"])
def test_worker_count_defaults_to_the_cpus(value):
    env = {} if value is None else {"WEB_CONCURRENCY": value}
    assert int(gunicorn_setting("workers", **env)) >= 3  # at least one CPU: 2 * 1 + 1
