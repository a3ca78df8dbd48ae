"""The platform's Prometheus metrics, served on METRICS_PORT (off when it is
empty or 0: nothing here is then counted).

Gunicorn's busy workers are counted in deploy/gunicorn.conf.py. Here: the
HTTP views (ViewMetricsMiddleware), PostgreSQL's queries (counted by the
engine in apps/core/postgresql), the cache (MeteredRedisCache), WebSockets
(JsonConsumer, the base of every consumer), the channel layer's round trip
(/ws/ping/) and /readyz's checks. The series keep django-prometheus's names,
labels and buckets, which dashboards and the alert rules know; the package
itself is not used (its releases do not support this Django).

Under Gunicorn each worker writes its values to files in
PROMETHEUS_MULTIPROC_DIR (deploy/start-web.sh), which the master adds up when
scraped: a gauge's multiprocess_mode says how. A dead worker's files are
merged into one file per kind (dead_worker_files_merge), so that a scrape
reads as many files however many workers have come and gone. Daphne is one
process, which serves its own values (project/asgi.py).
"""

import glob
import os
import threading
import time
from collections.abc import Callable

import prometheus_client
from django_redis import cache as django_redis_cache
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector

# django-prometheus's latency buckets: the alerts' objective, 0.5 s, is one.
LATENCY_BUCKETS = (
    *(0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0),
    *(25.0, 50.0, 75.0, float("inf")),
)

# --- HTTP, per view ---------------------------------------------------------------
# The names, labels and buckets of django-prometheus's middleware, which the
# alert rules (deploy/kubernetes/components/monitoring/rules.yaml) and
# docs/operating.md ("Metrics") use. `view` is the route's name (never the raw
# path, which would make a series per URL); `method` is one of METHODS,
# anything else one value.
http_requests = Counter(
    "django_http_requests_total_by_view_transport_method",
    "Count of requests by view, transport, method.",
    ["view", "transport", "method"],
)
http_responses = Counter(
    "django_http_responses_total_by_status_view_method",
    "Count of responses by status, view, method.",
    ["status", "view", "method"],
)
http_latency = Histogram(
    "django_http_requests_latency_seconds_by_view_method",
    "Histogram of request processing time labelled by view.",
    ["view", "method"],
    buckets=LATENCY_BUCKETS,
)
METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "CONNECT", "PATCH")
)
UNNAMED_VIEW = "<unnamed view>"


class ViewMetricsMiddleware:
    """Requests, responses by status and latency, per view: the three series
    of django-prometheus's PrometheusAfterMiddleware that anything reads, and
    none of its dozen others (by charset, template, body sizes, ...). Every
    metric update is a write to a memory-mapped file under Gunicorn: this
    makes four a request where django-prometheus's made twelve.

    Last but for axes (project/settings/base.py), so the status counted is the
    one sent, axes' 429 included, and the latency is the view's and the inner
    middleware's. A request is counted when its view is about to run
    (process_view, as django-prometheus counts it): one that no route matched
    (404) or that an outer middleware answered is counted among the
    responses alone, under UNNAMED_VIEW or its view."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in METHODS else "<invalid method>"
        match = request.resolver_match
        view = match.view_name if match is not None else UNNAMED_VIEW
        http_responses.labels(str(response.status_code), view, method).inc()
        http_latency.labels(view, method).observe(time.perf_counter() - started)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        method = request.method if request.method in METHODS else "<invalid method>"
        transport = "https" if request.is_secure() else "http"
        http_requests.labels(request.resolver_match.view_name, transport, method).inc()


# --- PostgreSQL: apps/core/postgresql counts and times every query ----------------
db_connections = Counter(
    "django_db_new_connections_total",
    "Counter of created connections by database and by vendor.",
    ["alias", "vendor"],
)
db_connection_errors = Counter(
    "django_db_new_connection_errors_total",
    "Counter of connection failures by database and by vendor.",
    ["alias", "vendor"],
)
db_executed = Counter(
    "django_db_execute_total",
    "Counter of executed statements by database and by vendor, including bulk executions.",
    ["alias", "vendor"],
)
db_executed_many = Counter(
    "django_db_execute_many_total",
    "Counter of executed statements in bulk operations by database and by vendor.",
    ["alias", "vendor"],
)
db_errors = Counter(
    "django_db_errors_total",
    "Counter of execution errors by database, vendor and exception type.",
    ["alias", "vendor", "type"],
)
db_query_duration = Histogram(
    "django_db_query_duration_seconds",
    "Histogram of query duration by database and vendor.",
    ["alias", "vendor"],
    buckets=LATENCY_BUCKETS,
)

# --- The cache ------------------------------------------------------------------------
cache_gets = Counter("django_cache_get_total", "Total get requests on cache", ["backend"])
cache_hits = Counter("django_cache_get_hits_total", "Total hits on cache", ["backend"])
cache_misses = Counter("django_cache_get_misses_total", "Total misses on cache", ["backend"])
cache_get_failures = Counter(
    "django_cache_get_fail_total", "Total get request failures by cache", ["backend"]
)


class MeteredRedisCache(django_redis_cache.RedisCache):
    """django-redis's cache, its gets counted: hits, misses and failures (a
    Redis that did not answer, which django-redis turns into a miss when
    IGNORE_EXCEPTIONS is on). The BACKEND when METRICS_PORT is set."""

    @django_redis_cache.omit_exception
    def get(self, key, default=None, version=None, client=None):
        cache_gets.labels("redis").inc()
        try:
            value = self.client.get(key, default=None, version=version, client=client)
        except django_redis_cache.ConnectionInterrupted:
            cache_get_failures.labels("redis").inc()
            raise
        if value is None:
            cache_misses.labels("redis").inc()
            return default
        cache_hits.labels("redis").inc()
        return value


# --- Background tasks (apps/core/tasks) ---------------------------------------------
# `task` is the task's name (its function's): a handful of values. Enqueued
# where the enqueueing happens (web, asgi, the worker itself); the rest in the
# worker that runs them.
tasks_enqueued = Counter("tasks_enqueued", "Tasks enqueued.", ["task"])
tasks_started = Counter("tasks_started", "Task attempts started.", ["task"])
tasks_succeeded = Counter("tasks_succeeded", "Tasks that returned.", ["task"])
tasks_retried = Counter(
    "tasks_retried", "Attempts that failed and were put back to run again.", ["task"]
)
tasks_failed = Counter(
    "tasks_failed", "Tasks that failed their last allowed attempt, kept as failed.", ["task"]
)
tasks_taken_over = Counter(
    "tasks_taken_over", "Running tasks whose worker died, put back to run again.", ["task"]
)
task_duration = Histogram(
    "task_duration_seconds",
    "How long an attempt ran, whatever its outcome.",
    ["task"],
    buckets=LATENCY_BUCKETS,
)


def task_enqueued_count(sender, task_result, **kwargs) -> None:
    """django.tasks' task_enqueued signal (connected in apps/core/apps.py)."""
    tasks_enqueued.labels(task_result.task.name).inc()


# Read by each worker from PostgreSQL every few seconds: every worker reports
# the same queue, so aggregate with max(), never sum().
tasks_waiting = Gauge(
    "tasks_waiting", "Tasks ready to run now and not yet started.", multiprocess_mode="max"
)
tasks_oldest_waiting_age = Gauge(
    "tasks_oldest_waiting_age_seconds",
    "How long the task that has waited longest to start has been ready (0: none waits).",
    multiprocess_mode="max",
)


# --- WebSockets ----------------------------------------------------------------------
# `consumer` is the consumer's class name: a handful of values, whatever the
# URLs. `code` is the WebSocket close code, as a string, from a fixed set
# (ConsumerMetrics.closed): a client may close with any of about two thousand.
websocket_connections_open = Gauge(
    "websocket_connections_open",
    "WebSockets open now.",
    ["consumer"],
    multiprocess_mode="livesum",
)
websocket_connects = Counter(
    "websocket_connects", "WebSockets accepted (handshakes completed).", ["consumer"]
)
websocket_closes = Counter(
    "websocket_closes",
    "Accepted WebSockets closed, by close code (1006: dropped with no close frame).",
    ["consumer", "code"],
)
websocket_messages_received = Counter(
    "websocket_messages_received", "Frames received from clients.", ["consumer"]
)
websocket_messages_sent = Counter(
    "websocket_messages_sent", "Frames sent to clients.", ["consumer"]
)
channel_layer_round_trip = Histogram(
    "channel_layer_round_trip_seconds",
    "/ws/ping/: from sending a message to its own channel to receiving it back.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
# The value of whichever process ran the checks last: a worker that has not
# run them for a while must not hold an old failure up (or hide a new one).
readiness_check_ok = Gauge(
    "readiness_check_ok",
    "1 if /readyz's last check of this dependency passed, 0 if it failed.",
    ["check"],
    multiprocess_mode="livemostrecent",
)

# Close code Daphne reports for a connection that ended with no close frame.
CLOSE_ABNORMAL = 1006
# The close codes registered with IANA (RFC 6455, section 7.4): each a label
# of its own, as is each code the consumer closes with itself.
REGISTERED_CLOSE_CODES = frozenset(range(1000, 1016))


class ConsumerMetrics:
    """One consumer's counters, with its label bound once, when it connects.
    `own_close_codes`: the codes the consumer itself closes sockets with."""

    def __init__(self, consumer: str, own_close_codes: frozenset[int] = frozenset()):
        self.open = websocket_connections_open.labels(consumer)
        self.connects = websocket_connects.labels(consumer)
        self.received = websocket_messages_received.labels(consumer)
        self.sent = websocket_messages_sent.labels(consumer)
        self.consumer = consumer
        self.close_codes = REGISTERED_CLOSE_CODES | own_close_codes

    def accepted(self) -> None:
        self.connects.inc()
        self.open.inc()

    def closed(self, code: int | None) -> None:
        self.open.dec()
        code = code or CLOSE_ABNORMAL
        # Any other code is the client's choice: one label for them all, so
        # that no client can add series to every scrape.
        label = str(code) if code in self.close_codes else "other"
        websocket_closes.labels(self.consumer, label).inc()


# Gunicorn's master: a scrape reads the files while child_exit merges a dead
# worker's, each under this lock, so that no scrape sees a count twice (in
# the dead worker's file and in the merged one) or not at all: a counter that
# seemed to go down would look like a restart to Prometheus.
files_lock = threading.Lock()


class WorkersCollector(MultiProcessCollector):
    """Every Gunicorn worker's files, live and merged, added up."""

    def collect(self):
        with files_lock:
            return list(super().collect())


# How each kind of file's values add up across processes, as
# MultiProcessCollector adds them (histogram buckets are kept per bucket, not
# cumulative, so they add too). Gauges of the other modes: "live*" ones are
# removed at death (mark_process_dead), and an "all" gauge, one series per
# process, dies with its process.
def added(merged: float, value: float) -> float:
    return merged + value


MERGED: dict[str, Callable[[float, float], float]] = {
    "counter": added,
    "histogram": added,
    "summary": added,
    "gauge_sum": added,
    "gauge_max": max,
    "gauge_min": min,
}


def dead_worker_files_merge(pid: int, directory: str) -> None:
    """Fold a dead Gunicorn worker's files into one file per kind
    (<kind>_merged.db), and remove them: its counts stay counted, and the
    files a scrape reads do not pile up as max_requests replaces workers."""
    with files_lock:
        for path in glob.glob(os.path.join(directory, f"*_{pid}.db")):
            kind = os.path.basename(path)[: -len(f"_{pid}.db")]
            merge = MERGED.get(kind)
            if merge is not None:
                merged_path = os.path.join(directory, f"{kind}_merged.db")
                so_far = {}
                if os.path.exists(merged_path):
                    so_far = {
                        key: value
                        for key, value, _, _ in MmapedDict.read_all_values_from_file(merged_path)
                    }
                merged = MmapedDict(merged_path)
                try:
                    for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(path):
                        if key in so_far:
                            value = merge(so_far[key], value)
                        merged.write_value(key, value, timestamp)
                finally:
                    merged.close()
            os.remove(path)


def metrics_serve(*, port: int, multiprocess: bool) -> None:
    """Serve /metrics on `port`, in a thread of this process: this process's
    own values, or with `multiprocess` those every Gunicorn worker has
    written (the process must be Gunicorn's master, which forks no requests
    of its own)."""
    registry = prometheus_client.REGISTRY
    if multiprocess:
        registry = prometheus_client.CollectorRegistry()
        WorkersCollector(registry)
    prometheus_client.start_http_server(port, registry=registry)
