"""The Kubernetes manifests (deploy/kubernetes/), rendered once per test run.

Each overlay is rendered by `kubectl kustomize` from a copy of
deploy/kubernetes/, with its secrets made for the copy: the local overlay's by
its own make-secrets.sh, the production overlay's as placeholders (the real
ones are written by whoever deploys, and never reach the repository or an
image).
"""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

BASE_DIR = Path(__file__).resolve().parents[2]
KUBERNETES_DIR = BASE_DIR / "deploy" / "kubernetes"
OVERLAYS = ("local", "production")
# The files the production overlay's Secrets are made of (its kustomization.yaml).
PRODUCTION_SECRETS = ("django_secret_key", "postgres_password", "redis_password", "email_password")
# The project's name, which the images, the namespace and a few objects carry:
# the label the base kustomization gives its objects, where `make rename`
# (deploy/rename.py) reads it too.
PART_OF = "app.kubernetes.io/part-of"
PROJECT_NAME = next(
    entry["pairs"][PART_OF]
    for entry in yaml.safe_load((KUBERNETES_DIR / "base/kustomization.yaml").read_text())["labels"]
    if PART_OF in entry["pairs"]
)


def tool(name: str) -> str:
    """A command from requirements/dev.txt, or checkov from its own virtualenv
    (/opt/checkov in the dev image). Missing is a failure, not a skip."""
    found = shutil.which(name) or shutil.which(name, path="/opt/checkov/bin")
    if not found:
        pytest.fail(
            f"{name} is not installed: pip install -r requirements/dev.txt"
            + (
                " (and requirements/checkov.txt in a virtualenv of its own)"
                if name == "checkov"
                else ""
            )
        )
    return found


@pytest.fixture(scope="session")
def rendered_files(tmp_path_factory) -> dict[str, Path]:
    """Each overlay's rendered YAML, as a file."""
    copy = tmp_path_factory.mktemp("kubernetes") / "kubernetes"
    shutil.copytree(KUBERNETES_DIR, copy, ignore=shutil.ignore_patterns("secrets"))
    # The script of the checkout, as run.sh runs it: it finds the generator
    # (deploy/generate_secrets.py) beside itself.
    subprocess.run(
        [KUBERNETES_DIR / "overlays/local/make-secrets.sh", copy / "overlays/local"],
        check=True,
        capture_output=True,
    )
    secrets = copy / "overlays/production/secrets"
    secrets.mkdir()
    for name in PRODUCTION_SECRETS:
        (secrets / name).write_text("placeholder")
    files = {}
    for overlay in OVERLAYS:
        result = subprocess.run(
            [tool("kubectl"), "kustomize", copy / "overlays" / overlay],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        # Deprecated fields render, with a warning on stderr: none allowed.
        assert result.stderr == "", result.stderr
        files[overlay] = copy / f"{overlay}.yaml"
        files[overlay].write_text(result.stdout)
    return files


@pytest.fixture(scope="session")
def rendered(rendered_files) -> dict[str, list[dict]]:
    """Each overlay's objects."""
    return {
        overlay: [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        for overlay, path in rendered_files.items()
    }


def render_production(tmp_path, edit) -> list[dict]:
    """The production overlay's objects, rendered from a copy of
    deploy/kubernetes/ that edit(overlay folder) has changed first."""
    copy = tmp_path / "kubernetes"
    shutil.copytree(BASE_DIR / "deploy/kubernetes", copy, ignore=shutil.ignore_patterns("secrets"))
    overlay = copy / "overlays/production"
    (overlay / "secrets").mkdir()
    for name in PRODUCTION_SECRETS:
        (overlay / "secrets" / name).write_text("placeholder")
    edit(overlay)
    rendered = subprocess.run(
        [tool("kubectl"), "kustomize", overlay],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]
