"""deploy/healthcheck.sh, the health check of web and asgi, against a stand-in
server: 200 is healthy, anything else is not; and the worker's, against the
file a Worker writes. No stack needed."""

import http.server
import socket
import subprocess
import threading
import time

import pytest

from project.env import BASE_DIR

HEALTHCHECK = BASE_DIR / "deploy" / "healthcheck.sh"


def serving(status: int):
    """A server on a free local port that answers every GET with `status`."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.server.paths.append(self.path)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    server.paths = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def check(port: int) -> subprocess.CompletedProcess:
    return subprocess.run([HEALTHCHECK, str(port)], capture_output=True, timeout=30)


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False), (500, False)])
def test_healthy_only_when_healthz_answers_200(status, healthy):
    server = serving(status)
    try:
        result = check(server.server_address[1])
    finally:
        server.shutdown()
    assert (result.returncode == 0) is healthy
    assert server.paths == ["/healthz"]


def test_unhealthy_when_nothing_listens():
    server = serving(200)
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    assert check(port).returncode != 0


def test_unhealthy_when_the_answer_never_comes():
    """A port that accepts and then says nothing (a server that hangs): the
    check gives up after its own 3 s, within Docker's timeout."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        started = time.monotonic()
        result = check(silent.getsockname()[1])
    assert result.returncode != 0
    assert 2.5 < time.monotonic() - started < 10


# --- The worker: its own account, in the file it rewrites -------------------------


def worker_check(path) -> bool:
    result = subprocess.run([HEALTHCHECK, "worker", str(path)], capture_output=True, timeout=30)
    return result.returncode == 0


@pytest.fixture
def worker(tmp_path, monkeypatch):
    from apps.core.tasks import worker as module

    monkeypatch.setattr(module, "HEALTH_FILE", tmp_path / "worker-health")
    return module.Worker()


def test_a_worker_whose_database_answers_and_whose_loop_turns_is_healthy(worker):
    worker.health_write(beat_ok=time.time())
    assert worker_check(worker_health_file(worker))


def test_a_worker_that_cannot_reach_postgresql_is_unhealthy(worker):
    worker.health_write(beat_ok=None)
    assert not worker_check(worker_health_file(worker))


def test_a_worker_whose_loop_has_stopped_is_unhealthy(worker):
    worker.loop_at = time.time() - 3600
    worker.health_write(beat_ok=time.time())
    assert not worker_check(worker_health_file(worker))


def test_a_worker_busy_within_its_time_limit_is_healthy_past_it_not(worker):
    worker.loop_at = time.time() - 3600
    worker.task_started_at = time.time() - 5
    worker.health_write(beat_ok=time.time())
    assert worker_check(worker_health_file(worker))
    worker.task_started_at = time.time() - 3600
    worker.health_write(beat_ok=time.time())
    assert not worker_check(worker_health_file(worker))


def test_a_worker_whose_heartbeat_stopped_writing_is_unhealthy(worker, monkeypatch):
    """The heartbeat thread rewrites the file every BEAT_SECONDS: a file
    written three beats ago says the worker stopped, whatever it said then."""
    from apps.core.tasks import worker as module

    written = time.time() - module.BEAT_SECONDS * 3 - 2
    worker.loop_at = written
    with monkeypatch.context() as patched:
        patched.setattr(module.time, "time", lambda: written)
        worker.health_write(beat_ok=written)
    assert not worker_check(worker_health_file(worker))


@pytest.mark.parametrize("content", ["", "soon\n", "now[$(>{marker})]\n", "-1\n"])
def test_a_file_that_holds_no_time_is_unhealthy_and_never_run(tmp_path, content):
    marker = tmp_path / "ran"
    path = tmp_path / "worker-health"
    path.write_text(content.format(marker=marker))
    assert not worker_check(path)
    assert not marker.exists()


def test_a_worker_with_no_file_yet_is_unhealthy(tmp_path):
    assert not worker_check(tmp_path / "missing")


def worker_health_file(worker):
    from apps.core.tasks import worker as module

    return module.HEALTH_FILE
