"""The project's own files, for the tests that read across the tree (its
links, its ports, its name, its Compose files): which files are the
project's, and Compose's YAML read as Compose reads it. No stack needed."""

import subprocess
from pathlib import Path

import yaml

from project.env import BASE_DIR

# Folders that are not the project's: others' packages, caches, and what git
# ignores (the benchmark's reports, uploads, secrets, dumps).
SKIPPED = {
    ".git",
    ".venv",
    "venv",
    "node_modules",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    "bench-results",
    "staticfiles",
    "media",
    "secrets",
    "backups",
}
# Yours, not the project's (git ignores them): .env, and `make dev`'s key.
YOURS = {".env", ".dev-secret-key"}


def project_files(pattern: str = "*") -> list[Path]:
    """Every file matching `pattern` that git tracks or would (untracked but
    not ignored); where there is no git repository (the tests image holds the
    project without .git), every one outside the folders skipped above."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", pattern],
            cwd=BASE_DIR,
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout.decode()
    except (OSError, subprocess.SubprocessError):
        listed = ""
    if listed:
        paths = {BASE_DIR / name for name in listed.split("\0") if name}
    else:
        paths = {
            path
            for path in BASE_DIR.rglob(pattern)
            if not SKIPPED & set(path.relative_to(BASE_DIR).parts)
        }
    return sorted(path for path in paths if path.is_file() and path.name not in YOURS)


class ComposeLoader(yaml.SafeLoader):
    """Compose's files: its tags (!override, !reset) read as what they tag."""


def _untagged(loader, _tag, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


ComposeLoader.add_multi_constructor("!", _untagged)


def compose_file(path: Path) -> dict:
    """A Compose file, as Compose reads it (before interpolation)."""
    return yaml.load(path.read_text(), ComposeLoader)
