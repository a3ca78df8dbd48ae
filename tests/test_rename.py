"""`make rename NAME=...` (deploy/rename.py), on a copy of the project: no
spelling of the old name is left; the copy's manifest, alerting rules and
docs tests pass (kubectl renders every overlay); its kustomizations and
Compose files carry the new name. Run again, it changes nothing. Refused, with
nothing changed: a name that is no DNS label, and a project whose current
name cannot be found. No stack needed."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from project.env import BASE_DIR
from tests.kubernetes.conftest import PART_OF, PROJECT_NAME
from tests.project_files import compose_file

RENAME = Path("deploy/rename.py")
CANONICAL = Path("deploy/kubernetes/base/kustomization.yaml")
# Not the project's files: git's, caches, reports, dumps, secrets, local settings.
NOT_COPIED = shutil.ignore_patterns(
    ".git",
    ".venv",
    "node_modules",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "bench-results",
    "staticfiles",
    "backups",
    "secrets",
    ".env",
)
# The copy's tests that hold what carries the name; fast, and with no stack.
CHECKS = ("tests/kubernetes", "tests/monitoring", "tests/test_docs.py")


def mentions(name: str) -> re.Pattern:
    """The name in any case, its words joined by a hyphen, an underscore or a
    space, as a whole word: wider than the spellings the rename knows, so that
    a new spelling fails here until it knows that one too."""
    words = "[-_ ]".join(map(re.escape, name.split("-")))
    return re.compile(rf"(?<![a-z0-9]){words}(?![a-z0-9])", re.IGNORECASE)


# The first of these of which the old name is no word (a fork may be named
# after one of them).
NEW_NAME = next(
    name for name in ("shop-test", "renamed-copy") if not mentions(PROJECT_NAME).search(name)
)


def rename(root: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, root / RENAME, *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def texts(root: Path):
    for path in sorted(root.rglob("*")):
        if path.is_file():
            try:
                yield path.relative_to(root), path.read_text()
            except UnicodeDecodeError:
                continue


@pytest.fixture(scope="module")
def renamed(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("rename") / "project"
    shutil.copytree(BASE_DIR, copy, ignore=NOT_COPIED, symlinks=True)
    result = rename(copy, NEW_NAME)
    assert result.returncode == 0, result.stderr
    assert f"rename: edited {CANONICAL}" in result.stdout.splitlines()
    return copy


def test_no_spelling_of_the_old_name_is_left(renamed):
    left = [
        f"{path}:{number}: {line.strip()}"
        for path, text in texts(renamed)
        for number, line in enumerate(text.splitlines(), 1)
        if mentions(PROJECT_NAME).search(line)
    ]
    assert not left, "\n".join(left)


def test_the_kustomizations_carry_the_new_name(renamed):
    found = {}
    for path in sorted((renamed / "deploy/kubernetes").rglob("kustomization.yaml")):
        kustomization = yaml.safe_load(path.read_text())
        found[path.parent.name] = kustomization.get("namespace")
        for image in kustomization.get("images", []):
            assert image["name"].startswith(f"{NEW_NAME}/"), image
            # <registry>/<name>/app, or <registry>/<repository>-app as the
            # Images workflow pushes it (overlays/production/images/).
            new_name = image.get("newName", NEW_NAME + "/")
            assert f"{NEW_NAME}/" in new_name or f"/{NEW_NAME}-" in new_name, image
    assert found == {
        "base": NEW_NAME,
        "local": NEW_NAME,
        "production": NEW_NAME,
        "monitoring": None,
        "https-egress": None,
        "images": None,
    }
    base = yaml.safe_load((renamed / CANONICAL).read_text())
    assert [entry["pairs"][PART_OF] for entry in base["labels"]] == [NEW_NAME]


def test_the_compose_files_carry_the_new_name(renamed):
    """`docker compose config` needs Docker, which the tests image has not:
    the files as YAML instead."""
    stack = compose_file(renamed / "docker-compose.yml")
    bench = compose_file(renamed / "bench/compose.yml")
    # Unnamed, the project is named after its folder, and so are the images
    # Compose builds for it (<project>-web).
    assert stack.get("name", NEW_NAME) == NEW_NAME
    images = {
        service["image"].split(":")[0]
        for compose in (stack, bench)
        for service in compose["services"].values()
        if "image" in service
    }
    assert {f"{NEW_NAME}/app", f"{NEW_NAME}/nginx", f"{NEW_NAME}/bench"} <= images
    # The others are Docker Hub's (postgres, redis, the mail catcher's),
    # which keep their names.
    others = {"postgres", "redis", "maildev/maildev"}
    assert all(image.startswith(f"{NEW_NAME}/") or image in others for image in images), images


def test_the_copys_own_checks_pass(renamed):
    """Among them, tests/kubernetes/ renders every overlay with kubectl."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *CHECKS],
        cwd=renamed,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_renaming_again_to_the_same_name_changes_nothing(renamed):
    result = rename(renamed, NEW_NAME)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"rename: the project is named {NEW_NAME} already; nothing to change.\n"


# --- On a small project of the test's own ------------------------------------------

# A file of its text: after CANONICAL in the order the rename walks the files.
NOTES = Path("notes/about.txt")


def small_project(root: Path, kustomization: str | None, text: str = "") -> Path:
    (root / "deploy").mkdir()
    shutil.copy(BASE_DIR / RENAME, root / RENAME)
    if kustomization is not None:
        (root / CANONICAL).parent.mkdir(parents=True)
        (root / CANONICAL).write_text(kustomization)
    (root / NOTES).parent.mkdir()
    (root / NOTES).write_text(text)
    return root


def label(name: str) -> str:
    return f"labels:\n  - pairs:\n      {PART_OF}: {name}\n"


def test_every_spelling_is_renamed_as_a_whole_word(tmp_path):
    root = small_project(
        tmp_path,
        label("old-name"),
        "# Old name deployment\nimage: old-name/app:local\nold_name_back old-name.alerts\n"
        "/tmp/old-name-scratch\nnot these: old-names bold-name old-name2 Old names\n",
    )
    result = rename(root, "new-name")
    assert result.returncode == 0, result.stderr
    # The file the name is read from, last: a rename cut short is finished
    # by running it again.
    assert result.stdout.splitlines()[:2] == [
        f"rename: edited {NOTES}",
        f"rename: edited {CANONICAL}",
    ]
    assert (root / NOTES).read_text() == (
        "# New name deployment\nimage: new-name/app:local\nnew_name_back new-name.alerts\n"
        "/tmp/new-name-scratch\nnot these: old-names bold-name old-name2 Old names\n"
    )
    assert (root / CANONICAL).read_text() == label("new-name")


def test_a_name_of_one_word_is_renamed_to_one_of_two_and_back(tmp_path):
    # One word is spelled alike as it is and as an identifier: it takes the
    # new name as it is (acme_back is Compose's network of the project acme).
    root = small_project(tmp_path, label("acme"), "Acme: acme/app, acme_back\n")
    assert rename(root, "acme-corp").returncode == 0
    assert (root / NOTES).read_text() == "Acme corp: acme-corp/app, acme-corp_back\n"
    assert rename(root, "acme").returncode == 0
    assert (root / NOTES).read_text() == "Acme: acme/app, acme_back\n"


def test_the_new_name_already_in_the_project_is_pointed_out(tmp_path):
    root = small_project(tmp_path, label("old-name"), "old-name/app\nthe web service\n")
    result = rename(root, "web")
    assert result.returncode == 0, result.stderr
    assert f"{NOTES}:2: the web service" in result.stdout


@pytest.mark.parametrize(
    "name",
    ["", "Bad", "9bad", "bad_name", "bad name", "bad.name", "-bad", "bad-", "b" * 41],
)
def test_a_name_that_is_no_dns_label_is_refused(tmp_path, name):
    root = small_project(tmp_path, label("old-name"), "old-name/app\n")
    result = rename(root, name)
    assert result.returncode == 2
    assert "usage: make rename NAME=<name>" in result.stderr
    assert (root / NOTES).read_text() == "old-name/app\n"
    assert (root / CANONICAL).read_text() == label("old-name")


@pytest.mark.parametrize("kustomization", [None, "namespace: old-name\n", label("Old Name")])
def test_a_project_whose_name_cannot_be_found_is_refused(tmp_path, kustomization):
    root = small_project(tmp_path, kustomization, "old-name/app\n")
    result = rename(root, "new-name")
    assert result.returncode == 1
    assert f"looked for the label `{PART_OF}: <name>` in {CANONICAL}" in result.stderr
    assert (root / NOTES).read_text() == "old-name/app\n"
