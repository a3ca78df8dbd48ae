"""`make remove-demo`: take the demo out of the project in one step.

Deletes apps/demo/ (this file with it) and, in every other file of the
project, each line marked [demo] and each block of lines from one marked
[demo:begin] to one marked [demo:end]. What is left is the platform alone,
with every test of its own still there and passing (`make test`), and no word
of the demo: a mention left unmarked (a comment, a test's example name) fails
the removal, naming each, so the tree is never left half-cleaned unnoticed.

    python apps/demo/remove.py      # from the project's root
"""

import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "apps" / "demo"
# Folders that are not the project's own files.
SKIPPED = {".git", ".venv", "node_modules", "__pycache__", "bench-results", "staticfiles"}

LINE, BEGIN, END = "[" + "demo]", "[" + "demo:begin]", "[" + "demo:end]"
# The word, in any case and form (demo, demos, demo's, apps.demo, /demo/).
MENTION = re.compile(r"\b" + "demo" + r"s?\b", re.IGNORECASE)


def demo_unmarked(text: str) -> str:
    """The text without its marked lines and blocks."""
    kept, in_block = [], False
    for line in text.splitlines(keepends=True):
        if BEGIN in line:
            in_block = True
        elif END in line:
            in_block = False
        elif not in_block and LINE not in line:
            kept.append(line)
    if in_block:
        raise ValueError(f"a {BEGIN} block is never ended")
    return "".join(kept)


def project_files():
    for path in sorted(ROOT.rglob("*")):
        parts = set(path.relative_to(ROOT).parts)
        if path.is_file() and not parts & SKIPPED and DEMO not in path.parents:
            yield path


def project_texts():
    for path in project_files():
        try:
            yield path, path.read_text()
        except (UnicodeDecodeError, PermissionError):
            continue  # not text of ours


def main() -> int:
    if not DEMO.is_dir():
        print("remove-demo: there is no apps/demo/ to remove.", file=sys.stderr)
        return 1
    for path, text in project_texts():
        changed = demo_unmarked(text)
        if changed != text:
            path.write_text(changed)
            print(f"remove-demo: edited {path.relative_to(ROOT)}")
    shutil.rmtree(DEMO)
    print("remove-demo: deleted apps/demo/.")
    left = [
        f"  {path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path, text in project_texts()
        for number, line in enumerate(text.splitlines(), 1)
        if MENTION.search(line)
    ]
    if left:
        print(
            "remove-demo: these lines still mention the demo; mark each [" + "demo] "
            "(or its block [" + "demo:begin] ... [" + "demo:end]) where it is, "
            "so that the removal takes it too:\n" + "\n".join(left),
            file=sys.stderr,
        )
        return 1
    print("remove-demo: nothing else mentions it. `make test` checks what is left.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
