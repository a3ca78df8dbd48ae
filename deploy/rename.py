"""`make rename NAME=shop`: give the project a fork's own name, in one step.

The project's name is an identifier in many places: the images (<name>/app,
<name>/nginx, <name>/bench), the Kubernetes namespace, labels and object
names, the alerting rules' group, a default folder name; and the prose
names the project by it. This rewrites every spelling of the current name in
every text file of the project, and prints each file it edits. The spellings,
here those of the current name, each as a whole word (no letter or digit on
either side):

    as it is (images, namespace, labels, object names):  django-reference
    as a Python or SQL identifier:                       django_reference
    in prose (titles):                                   Django reference

The current name is read from one place: the label app.kubernetes.io/part-of
that the base kustomization (CANONICAL, below) gives its objects, Kubernetes'
own label for the application a thing is part of, in the file every overlay
builds on; the tests read the name there too. That file is written last, so a
rename cut short is finished by running it again. Run with the name the
project has already, this changes nothing.

    python deploy/rename.py NAME      # from anywhere; the project is this file's
"""

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CANONICAL = Path("deploy/kubernetes/base/kustomization.yaml")
LABEL = "app.kubernetes.io/part-of"
# A DNS label (RFC 1123), as a Kubernetes namespace must be, which is also a
# valid image name and Compose project name; 40 characters at most, to leave
# room for what is named after it within a label's 63.
NAME = re.compile(r"[a-z](?:[a-z0-9-]{0,38}[a-z0-9])?")
USAGE = (
    "usage: make rename NAME=<name>, such as make rename NAME=shop: lowercase "
    "letters, digits and hyphens, starting with a letter and ending with a letter "
    "or a digit, 40 characters at most"
)
# Folders that are not the project's own files: git's, caches, others'
# packages, and what git ignores (reports, dumps, secrets, uploads).
SKIPPED = {
    ".git",
    ".venv",
    "venv",
    "node_modules",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "bench-results",
    "staticfiles",
    "backups",
    "secrets",
    "media",
}
# Files git ignores that hold local settings or keys, not the project's text.
SKIPPED_FILES = {".env", ".dev-secret-key"}
# How many of the lines that held the new name before the rename are listed.
SHOWN = 10


def spellings(name: str) -> list[str]:
    """The name as it is, as an identifier, and in prose (module docstring)."""
    return [name, name.replace("-", "_"), name.replace("-", " ").capitalize()]


def words(names) -> re.Pattern:
    """Any of the names, each as a whole word."""
    alternatives = "|".join(map(re.escape, sorted(set(names), key=len, reverse=True)))
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")


def current_name() -> str | None:
    try:
        text = (ROOT / CANONICAL).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    found = re.search(rf"^\s*{re.escape(LABEL)}:\s*[\"']?([^\"'\s#]+)[\"']?\s*(#.*)?$", text, re.M)
    return found[1] if found else None


def project_texts():
    """(path relative to ROOT, text) of every text file of the project, the
    canonical one last."""
    found = []
    for folder, folders, files in os.walk(ROOT):
        folders[:] = sorted(name for name in folders if name not in SKIPPED)
        for name in sorted(files):
            path = Path(folder, name)
            if name in SKIPPED_FILES or path.is_symlink():
                continue
            try:
                with open(path, encoding="utf-8", newline="") as file:
                    found.append((path.relative_to(ROOT), file.read()))
            except (UnicodeDecodeError, PermissionError):
                continue  # not text of ours
    return sorted(found, key=lambda item: item[0] == CANONICAL)


def main(arguments: list[str]) -> int:
    if len(arguments) != 1 or not arguments[0]:
        print(f"rename: {USAGE}", file=sys.stderr)
        return 2
    new = arguments[0]
    if not NAME.fullmatch(new):
        print(f"rename: {new!r} cannot be the project's name. {USAGE}", file=sys.stderr)
        return 2
    old = current_name()
    if old is None or not NAME.fullmatch(old):
        print(
            f"rename: cannot tell the project's current name: looked for the label "
            f"`{LABEL}: <name>` in {CANONICAL}"
            + (f", and found {old!r}, which is no name this could have given" if old else "")
            + ". Put the name the project has there, then run this again.",
            file=sys.stderr,
        )
        return 1
    if new == old:
        print(f"rename: the project is named {new} already; nothing to change.")
        return 0

    # A single-word old name is spelled the same as it is and as an
    # identifier: the first spelling (as it is) wins.
    replacements = {}
    for before, after in zip(spellings(old), spellings(new), strict=True):
        replacements.setdefault(before, after)
    old_words, new_words = words(replacements), words(spellings(new))
    already = []
    for path, text in project_texts():
        for number, line in enumerate(text.splitlines(), 1):
            if new_words.search(old_words.sub("", line)):
                already.append(f"  {path}:{number}: {line.strip()}")
        changed = old_words.sub(lambda found: replacements[found[0]], text)
        if changed != text:
            with open(ROOT / path, "w", encoding="utf-8", newline="") as file:
                file.write(changed)
            print(f"rename: edited {path}")
    print(f"rename: the project is named {new} (it was {old}); `make test` checks it.")
    if already:
        more = f"\n  ... and {len(already) - SHOWN} more" if len(already) > SHOWN else ""
        print(
            f"rename: note: {new} was in the project already, as something other than "
            "its name; a later rename will change these lines too:\n"
            + "\n".join(already[:SHOWN])
            + more
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
