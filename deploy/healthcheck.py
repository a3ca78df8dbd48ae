"""Docker health check for web and asgi: GET /healthz on this container's port.

    python deploy/healthcheck.py 8000
    python deploy/healthcheck.py worker [FILE]

With `worker`: the worker's own account of itself, in the file it rewrites
every few seconds (apps/core/tasks/worker.py, HEALTH_FILE): healthy while the
file is fresh, PostgreSQL answered its last heartbeat, and its loop turned
recently, or the task in hand is within its time limit. The limits are the
worker's, written in the file.

Exits 0 when the answer is 200, 1 otherwise (an error, a refused or silent
port: a traceback, and 1).

Docker runs this every 3 s in web and in each asgi replica for as long as they
run, so it imports nothing but the socket module: with urllib.request, whose
imports (http.client, email, ssl) the check never needs, each run cost about
58 ms of CPU in place of 22 (docs/performance.md). Python, because the slim
image has no curl.
"""

import socket
import sys
import time


def worker_healthy(path: str = "/tmp/worker-health.json") -> bool:  # noqa: S108
    import json

    try:
        with open(path) as file:
            state = json.load(file)
    except (OSError, ValueError):
        return False
    now = time.time()
    if now - state["written_at"] > state["beat_max_seconds"] or not state["database_ok"]:
        return False
    if state["task_started_at"] is not None:
        return now - state["task_started_at"] <= state["task_max_seconds"]
    return now - state["loop_at"] <= state["loop_max_seconds"]


if sys.argv[1] == "worker":
    sys.exit(0 if worker_healthy(*sys.argv[2:3]) else 1)

port = int(sys.argv[1])
with socket.create_connection(("127.0.0.1", port), timeout=3) as connection:
    # HTTP/1.0: the server closes the connection after its answer.
    connection.sendall(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    status_line = connection.makefile("rb").readline()  # b"HTTP/1.1 200 OK\r\n"
sys.exit(0 if status_line.split()[1:2] == [b"200"] else 1)
