"""The deployment files pass their linters with no findings."""

import subprocess
from pathlib import Path

from project.env import BASE_DIR

SHELL_SCRIPTS = [
    *BASE_DIR.joinpath("deploy").glob("*.sh"),
    BASE_DIR / "nginx" / "10-site.envsh",
    *BASE_DIR.joinpath("nginx").glob("*.sh"),
    BASE_DIR / ".ci" / "run",
]


def run(*command: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(part) for part in command], cwd=BASE_DIR, capture_output=True, text=True, timeout=120
    )


def test_dockerfile_passes_hadolint():
    # .hadolint.yaml says which rule is ignored, and why.
    result = run("hadolint", "--config", ".hadolint.yaml", "deploy/Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_shell_scripts_pass_shellcheck():
    assert len(SHELL_SCRIPTS) >= 5
    result = run("shellcheck", "--shell=sh", *SHELL_SCRIPTS[:-1])
    assert result.returncode == 0, result.stdout + result.stderr
    result = run("shellcheck", "--shell=bash", SHELL_SCRIPTS[-1])
    assert result.returncode == 0, result.stdout + result.stderr
