"""`make remove-demo`: take the demo out of the project in one step.

Deletes apps/demo/ (this file with it) and, in every other file of the
project, each line marked [demo] and each block of lines from one marked
[demo:begin] to one marked [demo:end]. What is left is the platform alone,
with every test of its own still there and passing (`make test`).

    python apps/demo/remove.py      # from the project's root
"""

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "apps" / "demo"
# Folders that are not the project's own files.
SKIPPED = {".git", ".venv", "node_modules", "__pycache__", "bench-results", "staticfiles"}

LINE, BEGIN, END = "[" + "demo]", "[" + "demo:begin]", "[" + "demo:end]"


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


def main() -> int:
    if not DEMO.is_dir():
        print("remove-demo: there is no apps/demo/ to remove.", file=sys.stderr)
        return 1
    for path in project_files():
        try:
            text = path.read_text()
        except (UnicodeDecodeError, PermissionError):
            continue  # not text of ours
        changed = demo_unmarked(text)
        if changed != text:
            path.write_text(changed)
            print(f"remove-demo: edited {path.relative_to(ROOT)}")
    shutil.rmtree(DEMO)
    print("remove-demo: deleted apps/demo/. `make test` checks what is left.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
