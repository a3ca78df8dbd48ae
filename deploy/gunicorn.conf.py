"""Gunicorn's settings for the `web` service. https://docs.gunicorn.org/en/stable/settings.html

Started by deploy/start-web.sh. Only nginx reaches Gunicorn: it buffers slow
clients, so every value here can assume a fast, trusted peer.
"""

import os
import subprocess
import threading
from pathlib import Path

from django.conf import settings
from gunicorn import glogging

from apps.core.request_id import PROBE_PATHS, request_id_valid
from project.env import env
from project.logs import formatter

# The settings Django will run with (as project/wsgi.py, which Gunicorn loads
# after this file): the log format and the metrics port below are theirs.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings.production")


def container_cpus() -> int:
    """CPUs this container may use: its CPU limit (cgroup v2 or v1) rounded
    up, or the CPUs it may run on. deploy/container-cpus.sh, the routine
    nginx's worker count uses too (nginx/20-processes.envsh); os.cpu_count()
    alone would see every core of the host."""
    script = Path(__file__).with_name("container-cpus.sh")
    counted = subprocess.run(  # noqa: S603 (our own script, no input)
        ["/bin/sh", script], capture_output=True, text=True, check=True
    )
    return int(counted.stdout)


# Where nginx sends requests: each replica's address, this port
# (nginx/40-follow-web.sh). tests/test_ports.py holds every file that names
# it to this one.
bind = "0.0.0.0:8000"

# WEB_CONCURRENCY is the usual variable for the worker count; unset or 0 means
# two per CPU plus one, which keeps the CPUs busy while some workers wait on
# PostgreSQL or Redis.
workers = env.int("WEB_CONCURRENCY", default=0) or 2 * container_cpus() + 1

# Import Django once, in the master, and fork the workers from it: they share
# the imported code's memory until they write to it. With five workers, the
# web container used 127-146 MiB in place of 312-315 (docs/performance.md),
# and a worker replaced after max_requests starts without re-importing.
# (Nothing opens a connection at import, so none is shared between workers.)
preload_app = True

# Threads let one worker overlap the requests that wait on I/O, at the memory
# cost of one process.
worker_class = "gthread"
threads = 4

# A worker silent for this long is killed and replaced. Well above any honest
# request; nginx gives up on Gunicorn after 60 s (proxy_read_timeout).
timeout = 30

# On SIGTERM, requests in flight get this long to finish. With the 5 s drain
# before it (deploy/run-draining.sh), shorter than the stop_grace_period in
# docker-compose.yml (30 s), so Docker never has to SIGKILL a worker
# mid-request (tests/test_shutdown_timing.py).
graceful_timeout = 20

# nginx keeps idle connections to Gunicorn open for 60 s (upstream web in
# nginx/default.conf.template); Gunicorn waits longer, so that it is always
# nginx that closes one, never Gunicorn while nginx is sending on it.
keepalive = 75

# Replace each worker after about twenty thousand requests, so a slow leak in
# any library never grows without bound. The jitter keeps workers from all
# restarting at once. (Before preload_app, each new worker spent about a
# second of CPU importing Django, and replacing one every thousand requests
# cost the home page a fifth of its CPU: docs/performance.md.)
max_requests = 20000
max_requests_jitter = 2000

# Workers' heartbeat files in memory: on a container's overlay file system a
# slow disk write can look like a hung worker.
worker_tmp_dir = "/dev/shm"  # noqa: S108 (a tmpfs every container has)

# Logs to stdout (requests) and stderr (Gunicorn's own), where Docker
# collects them, in the format Django's settings read from LOG_FORMAT
# (project/logs.py), so that Gunicorn's lines and Django's never differ.
accesslog = "-"
errorlog = "-"
LOG_FORMAT = settings.LOG_FORMAT
formatter(LOG_FORMAT)  # a LOG_FORMAT it does not know stops Gunicorn here, saying so


class Logger(glogging.Logger):
    """Gunicorn's logger, writing the project's schema: each access line
    carries the request's id (X-Request-ID, from nginx), method, path,
    status, duration and client (the address nginx saw, which
    ClientAddressMiddleware put in REMOTE_ADDR), as fields of their own.

    Cheaper than Gunicorn's own, which copies every header and environ
    variable into a dict for its format string on each request. The probes
    (Docker's health check, nginx's follower of web's replicas: several a
    second in all) are answered and not logged; nginx logs those that come
    through it."""

    def setup(self, cfg):
        super().setup(cfg)
        line_format = formatter(LOG_FORMAT)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(line_format)

    def access(self, resp, req, environ, request_time):
        # The path as the client sent it, without the query string, as nginx logs it.
        uri = environ["RAW_URI"]
        path = uri.partition("?")[0]
        if path in PROBE_PATHS or not self.access_log_enabled:
            return
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        method = environ["REQUEST_METHOD"]
        self.access_log.info(
            "%s %s %s",
            method,
            uri,
            environ["SERVER_PROTOCOL"],
            extra={
                "request_id": request_id_valid(environ.get("HTTP_X_REQUEST_ID")),
                "method": method,
                "path": path,
                "status": int(status),
                "duration": round(request_time.total_seconds(), 6),
                "client": environ.get("REMOTE_ADDR"),
                # The scheme the browser used, as nginx passed it.
                "scheme": environ.get("HTTP_X_FORWARDED_PROTO"),
                "bytes": getattr(resp, "sent", None),
                "user_agent": environ.get("HTTP_USER_AGENT"),
            },
        )


logger_class = Logger

# No control socket (gunicornc): it wants a writable home directory, which the
# app user does not have. Docker drives Gunicorn with signals instead: TERM to
# stop gracefully, HUP to reload workers.
control_socket_disable = True

# --- Metrics (METRICS_PORT; off when empty or 0) --------------------------------
# Each worker counts in files of its own in PROMETHEUS_MULTIPROC_DIR
# (prometheus-client's multiprocess mode; deploy/start-web.sh sets and empties
# it), and the master alone serves /metrics, adding every worker's files up.
# A metrics server in each worker, or Django's /metrics view, would answer
# with whichever worker a scrape reached: counts that jump about and lose
# what dead workers counted (django-prometheus issues #423 and #111).
METRICS_PORT = settings.METRICS_PORT

if METRICS_PORT:
    from prometheus_client import Gauge

    # Registered nowhere: the master reads them from the workers' files, and
    # a HUP, which runs this file again, must not register them twice.
    # livesum: the sum over workers alive now; a dead worker's part goes
    # with it (child_exit).
    workers_running = Gauge(
        "gunicorn_workers", "Gunicorn workers running.", multiprocess_mode="livesum", registry=None
    )
    workers_busy = Gauge(
        "gunicorn_workers_busy",
        "Gunicorn workers handling at least one request now.",
        multiprocess_mode="livesum",
        registry=None,
    )
    # Requests this worker has in hand: a worker has several threads.
    worker_requests = {"in_hand": 0}
    worker_requests_lock = threading.Lock()

    def when_ready(server):
        """The master, once it listens and before it starts any worker."""
        from apps.core.metrics import metrics_serve

        metrics_serve(port=METRICS_PORT, multiprocess=True)

    def post_worker_init(worker):
        workers_running.set(1)

    def pre_request(worker, req):
        with worker_requests_lock:
            worker_requests["in_hand"] += 1
            workers_busy.set(1)

    def post_request(worker, req, environ, resp):
        with worker_requests_lock:
            worker_requests["in_hand"] -= 1
            if not worker_requests["in_hand"]:
                workers_busy.set(0)

    def child_exit(server, worker):
        """The master, for each worker that has exited, however it ended: its
        counters stay counted (in the merged files), its gauges stop counting,
        and its own files go (apps/core/metrics.py)."""
        from apps.core.metrics import dead_worker_files_merge

        dead_worker_files_merge(worker.pid, os.environ["PROMETHEUS_MULTIPROC_DIR"])
