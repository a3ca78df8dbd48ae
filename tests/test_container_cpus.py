"""deploy/container-cpus.sh, the one count of a container's CPUs, fed fixtures
of the cgroup files it reads (v2 and v1), with nproc standing in for the
CPUs the process may run on; and the two that use it, nginx's worker count
(nginx/20-processes.envsh) and Gunicorn's (deploy/gunicorn.conf.py, in
project/tests/test_gunicorn_config.py). Under /bin/sh, dash in both images;
no stack needed."""

import re
import subprocess
from pathlib import Path

import pytest

from project.env import BASE_DIR

CONTAINER_CPUS = BASE_DIR / "deploy" / "container-cpus.sh"
SCHEDULABLE = 8  # what the stand-in nproc says


@pytest.fixture
def tools(tmp_path) -> Path:
    """A folder for PATH: nproc saying SCHEDULABLE, and container-cpus as the
    nginx image installs it."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "nproc").write_text(f"#!/bin/sh\necho {SCHEDULABLE}\n")
    (folder / "container-cpus").write_text(f'#!/bin/sh\nexec /bin/sh "{CONTAINER_CPUS}" "$@"\n')
    for tool in folder.iterdir():
        tool.chmod(0o755)
    return folder


def cgroup(tmp_path, files: dict[str, str]) -> Path:
    """A stand-in for /sys/fs/cgroup holding `files`."""
    root = tmp_path / "cgroup"
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content + "\n")
    root.mkdir(exist_ok=True)
    return root


def counted(tools, root) -> str:
    result = subprocess.run(
        ["/bin/sh", str(CONTAINER_CPUS), str(root)],
        env={"PATH": f"{tools}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(
    ("files", "cpus"),
    [
        # cgroup v2: cpu.max is "<quota> <period>", or "max <period>".
        ({"cpu.max": "200000 100000"}, 2),
        ({"cpu.max": "150000 100000"}, 2),  # 1.5 CPUs: rounded up
        ({"cpu.max": "50000 100000"}, 1),  # half a CPU: one
        ({"cpu.max": "max 100000"}, SCHEDULABLE),  # no limit
        ({"cpu.max": "1600000 100000"}, SCHEDULABLE),  # more than it may run on
        # cgroup v1: the quota (-1: none) and the period, each in a file.
        ({"cpu/cpu.cfs_quota_us": "300000", "cpu/cpu.cfs_period_us": "100000"}, 3),
        ({"cpu/cpu.cfs_quota_us": "250000", "cpu/cpu.cfs_period_us": "100000"}, 3),
        ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, SCHEDULABLE),
        # Neither (no cgroup file system): the CPUs it may run on.
        ({}, SCHEDULABLE),
    ],
    ids=[
        "v2-2",
        "v2-1.5",
        "v2-0.5",
        "v2-max",
        "v2-above",
        "v1-3",
        "v1-2.5",
        "v1-none",
        "none",
    ],
)
def test_the_limit_rounded_up_or_the_cpus_it_may_run_on(tmp_path, tools, files, cpus):
    assert counted(tools, cgroup(tmp_path, files)) == f"{cpus}\n"


def test_nginx_runs_one_worker_per_cpu_counted(tmp_path, tools):
    """20-processes.envsh, sourced as the nginx image's entrypoint sources it,
    with container-cpus on PATH as the image installs it, here reading a
    limit of 3 CPUs (nproc says 8)."""
    root = cgroup(tmp_path, {"cpu.max": "300000 100000"})
    (tools / "container-cpus").write_text(f'#!/bin/sh\nexec /bin/sh "{CONTAINER_CPUS}" "{root}"\n')
    rendered = tmp_path / "conf.d"
    rendered.mkdir()
    result = subprocess.run(
        ["/bin/sh", "-c", f'. "{BASE_DIR / "nginx" / "20-processes.envsh"}"'],
        env={"PATH": f"{tools}:/usr/bin:/bin", "NGINX_ENVSUBST_OUTPUT_DIR": str(rendered)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    processes = (rendered / "processes.inc").read_text()
    assert re.search(r"^worker_processes (\d+);$", processes, re.MULTILINE)[1] == "3"
