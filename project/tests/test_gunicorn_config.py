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
    # Two per CPU plus one, the CPUs as deploy/container-cpus.sh counts them
    # for nginx too (tests/test_container_cpus.py feeds it cgroup files).
    cpus = subprocess.run(
        ["/bin/sh", BASE_DIR / "deploy" / "container-cpus.sh"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    env = {} if value is None else {"WEB_CONCURRENCY": value}
    assert int(gunicorn_setting("workers", **env)) == 2 * int(cpus) + 1


def test_config_is_valid_with_metrics_on(tmp_path):
    result = gunicorn("--check-config", METRICS_PORT="9100", PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr


# The hooks in a worker of their own, with the files the master would add up.
BUSY_WORKER = """
import runpy
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

config = runpy.run_path("deploy/gunicorn.conf.py")
registry = CollectorRegistry()
MultiProcessCollector(registry)

def busy():
    return registry.get_sample_value("gunicorn_workers_busy")

config["post_worker_init"](None)
seen = [registry.get_sample_value("gunicorn_workers"), busy()]
config["pre_request"](None, None)
config["pre_request"](None, None)  # a second thread of the same worker
seen.append(busy())
config["post_request"](None, None, {}, None)
seen.append(busy())
config["post_request"](None, None, {}, None)
seen.append(busy())
print(seen)
"""


def test_a_worker_is_busy_while_any_of_its_threads_has_a_request(tmp_path):
    env = os.environ | {"METRICS_PORT": "9100", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", BUSY_WORKER],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == "[1.0, 0.0, 1.0, 1.0, 0.0]"
