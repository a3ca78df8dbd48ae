"""Run in a sidecar that shares a web container's process namespace (bench/run.py
starts it, with SYS_PTRACE, for the profile alone): samples Gunicorn's master
and its workers with py-spy for a few seconds and prints the collapsed stacks
(one line per stack, "frame;frame;... count"), the input of flame graphs.

    python spy.py <seconds>
"""

import subprocess
import sys
import tempfile
from pathlib import Path


def gunicorn_master() -> int:
    """The Gunicorn process whose parent is no Gunicorn: the master."""
    commands = {}
    parents = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            commands[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
    gunicorns = {pid for pid, command in commands.items() if b"gunicorn" in command}
    masters = sorted(pid for pid in gunicorns if parents.get(pid) not in gunicorns)
    if not masters:
        sys.exit("no Gunicorn process in this namespace")
    return masters[0]


seconds = str(int(sys.argv[1]))
with tempfile.TemporaryDirectory() as folder:
    output = Path(folder) / "stacks.txt"
    # A fixed command; only numbers vary. --nonblocking: the workers are not
    # paused for each sample, so the page runs at its usual pace.
    command = ["py-spy", "record", "--pid", str(gunicorn_master()), "--subprocesses"]
    command += ["--nonblocking", "--rate", "100", "--duration", seconds]
    command += ["--format", "raw", "--output", str(output)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)  # noqa: S603
    sys.stdout.write(output.read_text())
