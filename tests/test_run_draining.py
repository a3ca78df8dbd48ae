"""deploy/run-draining.sh with a stand-in server that writes down each signal it
gets: Gunicorn's signals pass straight through, TERM drains first. Runs under
/bin/sh, dash in the image, as the containers run it; no stack needed."""

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from apps.core.draining import DRAIN_MARKER
from project.env import BASE_DIR

RUN_DRAINING = BASE_DIR / "deploy" / "run-draining.sh"
DRAIN_SECONDS = 2
PATIENCE = 10  # seconds; the events below take milliseconds

# Writes "ready" once its handlers are in place, then each signal's name as it
# arrives; TERM ends it, as it ends Gunicorn.
STAND_IN_SERVER = textwrap.dedent(
    """
    import signal, sys, time

    record = open(sys.argv[1], "a", buffering=1)

    def write_down(number, frame):
        record.write(signal.Signals(number).name + "\\n")
        if number == signal.SIGTERM:
            sys.exit(0)

    for name in ("SIGHUP", "SIGTTIN", "SIGTTOU", "SIGUSR1", "SIGUSR2", "SIGTERM"):
        signal.signal(getattr(signal, name), write_down)
    record.write("ready\\n")
    while True:
        time.sleep(60)
    """
)


def lines_wait(record, count: int) -> list[str]:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        lines = record.read_text().splitlines()
        if len(lines) >= count:
            return lines
        time.sleep(0.02)
    raise AssertionError(f"after {PATIENCE} s the server had written only {lines!r}")


@pytest.fixture
def server_running(tmp_path):
    """run-draining.sh running the stand-in; yields (the script's process, the record)."""
    server = tmp_path / "server.py"
    server.write_text(STAND_IN_SERVER)
    record = tmp_path / "signals"
    record.touch()
    # From the project's folder, with this Python first on PATH: as in the
    # image, where the script asks apps/core/draining.py for the marker's path.
    process = subprocess.Popen(
        ["/bin/sh", str(RUN_DRAINING), sys.executable, str(server), str(record)],
        cwd=BASE_DIR,
        env={
            "DRAIN_SECONDS": str(DRAIN_SECONDS),
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        },
    )
    try:
        assert lines_wait(record, 1) == ["ready"]
        yield process, record
    finally:
        process.kill()
        process.wait(timeout=PATIENCE)
        DRAIN_MARKER.unlink(missing_ok=True)


def test_gunicorn_s_signals_reach_the_server_as_they_arrive(server_running):
    process, record = server_running
    forwarded = ["SIGHUP", "SIGTTIN", "SIGTTOU", "SIGUSR1", "SIGUSR2"]
    for count, name in enumerate(forwarded, start=2):
        process.send_signal(getattr(signal, name))
        assert lines_wait(record, count)[-1] == name
    assert process.poll() is None  # still serving
    assert not DRAIN_MARKER.exists()  # and not draining


def test_term_drains_before_it_reaches_the_server(server_running):
    process, record = server_running
    process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + PATIENCE
    while not DRAIN_MARKER.exists():
        assert time.monotonic() < deadline, "no drain marker"
        time.sleep(0.02)
    drain_started = time.monotonic()
    assert record.read_text().splitlines() == ["ready"]  # serving on while draining

    assert lines_wait(record, 2)[-1] == "SIGTERM"
    assert time.monotonic() - drain_started >= DRAIN_SECONDS * 0.9
    assert process.wait(timeout=PATIENCE) == 0  # the server's exit status, passed on
