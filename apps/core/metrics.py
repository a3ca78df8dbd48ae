"""The platform's own Prometheus metrics, served with django-prometheus's on
METRICS_PORT (off when it is empty or 0: nothing here is then counted).

django-prometheus measures the HTTP views, PostgreSQL and the cache
(project/settings/base.py); Gunicorn's busy workers are counted in
deploy/gunicorn.conf.py. Here: WebSockets (JsonConsumer, the base of every
consumer), the channel layer's round trip (/ws/ping/) and /readyz's checks.

Under Gunicorn each worker writes its values to files in
PROMETHEUS_MULTIPROC_DIR (deploy/start-web.sh), which the master adds up when
scraped: a gauge's multiprocess_mode says how. Daphne is one process, which
serves its own values (project/asgi.py).
"""

import prometheus_client
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

# `consumer` is the consumer's class name: a handful of values, whatever the
# URLs. `code` is the WebSocket close code, as a string.
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


class ConsumerMetrics:
    """One consumer's counters, with its label bound once, when it connects."""

    def __init__(self, consumer: str):
        self.open = websocket_connections_open.labels(consumer)
        self.connects = websocket_connects.labels(consumer)
        self.received = websocket_messages_received.labels(consumer)
        self.sent = websocket_messages_sent.labels(consumer)
        self.consumer = consumer

    def accepted(self) -> None:
        self.connects.inc()
        self.open.inc()

    def closed(self, code: int | None) -> None:
        self.open.dec()
        websocket_closes.labels(self.consumer, str(code or CLOSE_ABNORMAL)).inc()


def metrics_serve(*, port: int, multiprocess: bool) -> None:
    """Serve /metrics on `port`, in a thread of this process: this process's
    own values, or with `multiprocess` those every Gunicorn worker has
    written (the process must be Gunicorn's master, which forks no requests
    of its own)."""
    registry = prometheus_client.REGISTRY
    if multiprocess:
        registry = prometheus_client.CollectorRegistry()
        MultiProcessCollector(registry)
    prometheus_client.start_http_server(port, registry=registry)
