"""The platform's metrics (apps/core/metrics.py) as JsonConsumer, /readyz and
the worker count them, in this process's registry: what Daphne and the
worker serve. Gunicorn's workers, and the scrape itself, are tested through
the stack (tests/e2e/test_metrics.py)."""

import json
from datetime import timedelta

import pytest
from channels.layers import get_channel_layer
from django.tasks import task
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from apps.core.draining import CLOSE_SERVICE_RESTART, server_group
from apps.core.metrics import WorkersCollector, dead_worker_files_merge
from apps.core.tasks.worker import Worker
from apps.core.tests.test_consumers import connected
from project.settings.base import middleware

pytestmark = pytest.mark.django_db(transaction=True)


def ping_metrics(code: str) -> dict[str, float]:
    consumer = {"consumer": "PingConsumer"}
    names = {
        "connects": ("websocket_connects_total", consumer),
        "open": ("websocket_connections_open", consumer),
        "closes": ("websocket_closes_total", {**consumer, "code": code}),
        "received": ("websocket_messages_received_total", consumer),
        "sent": ("websocket_messages_sent_total", consumer),
        "round_trips": ("channel_layer_round_trip_seconds_count", {}),
    }
    return {
        key: REGISTRY.get_sample_value(name, labels) or 0.0 for key, (name, labels) in names.items()
    }


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_PORT = 9100


@pytest.mark.parametrize(
    ("code", "counted_as"),
    [
        (1001, "1001"),  # registered (RFC 6455)
        (CLOSE_SERVICE_RESTART, "4012"),  # the consumer's own
        (4321, "other"),  # any other code a client picks: one label for all
        (None, "1006"),  # no close frame
    ],
)
async def test_a_socket_is_counted_from_accept_to_close(metrics_on, code, counted_as):
    before = ping_metrics(counted_as)
    client = await connected()
    for n in range(3):
        await client.send_to(text_data=json.dumps({"ping": n}))
        assert json.loads(await client.receive_from()) == {"pong": n}
    await client.send_to(text_data="not json")  # received, and answered with an error
    await client.receive_from()
    assert ping_metrics(counted_as) == {
        **before,
        "connects": before["connects"] + 1,
        "open": before["open"] + 1,
        "received": before["received"] + 4,
        "sent": before["sent"] + 4,
        "round_trips": before["round_trips"] + 3,
    }
    # None: the connection dropped with no close frame.
    await client.send_input({"type": "websocket.disconnect", "code": code})
    await client.wait()
    after = ping_metrics(counted_as)
    assert (after["open"], after["closes"]) == (before["open"], before["closes"] + 1)


async def test_nothing_is_counted_with_metrics_off(settings):
    settings.METRICS_PORT = 0
    before = ping_metrics("other")
    client = await connected()
    await client.send_to(text_data=json.dumps({"ping": 1}))
    await client.receive_from()
    await client.disconnect(code=4321)
    assert ping_metrics("other") == before


async def test_a_ping_echo_sent_by_anyone_else_is_answered_and_not_timed(metrics_on):
    before = ping_metrics("1000")["round_trips"]
    client = await connected()
    channel_layer = get_channel_layer()
    await channel_layer.group_send(server_group(), {"type": "ping.echo", "ping": "from afar"})
    assert json.loads(await client.receive_from()) == {"pong": "from afar"}
    assert ping_metrics("1000")["round_trips"] == before
    await client.disconnect()


# --- HTTP, per view (ViewMetricsMiddleware) ------------------------------------


@pytest.fixture
def view_metrics(settings):
    # The list as METRICS_PORT would make it, from the settings' one builder.
    settings.MIDDLEWARE = middleware(behind_nginx=False, metrics=True)


def http_counts(view: str, method: str, status: str) -> dict[str, float]:
    samples = {
        "requests": (
            "django_http_requests_total_by_view_transport_method_total",
            {"view": view, "transport": "http", "method": method},
        ),
        "responses": (
            "django_http_responses_total_by_status_view_method_total",
            {"status": status, "view": view, "method": method},
        ),
        "timed": (
            "django_http_requests_latency_seconds_by_view_method_count",
            {"view": view, "method": method},
        ),
    }
    return {
        key: REGISTRY.get_sample_value(name, labels) or 0.0
        for key, (name, labels) in samples.items()
    }


def test_a_request_is_counted_and_timed_under_its_route_name(view_metrics, client):
    before = http_counts("admin:login", "GET", "200")
    assert client.get("/admin/login/").status_code == 200
    assert http_counts("admin:login", "GET", "200") == {
        key: value + 1 for key, value in before.items()
    }


def test_a_path_no_route_matches_is_one_series_not_one_per_path(view_metrics, client):
    before = http_counts("<unnamed view>", "GET", "404")
    assert client.get("/no/such/page/").status_code == 404
    assert client.get("/another/missing/page/").status_code == 404
    after = http_counts("<unnamed view>", "GET", "404")
    assert after == {**before, "responses": before["responses"] + 2, "timed": before["timed"] + 2}


def test_an_unknown_method_is_one_series_not_one_per_method(view_metrics, client):
    before = http_counts("admin:login", "<invalid method>", "405")
    response = client.generic("BREW", "/admin/login/")
    assert response.status_code == 405
    assert http_counts("admin:login", "<invalid method>", "405") == {
        key: value + 1 for key, value in before.items()
    }


# --- Background tasks (apps/core/tasks/worker.py) -----------------------------------
# A Worker in this process, driven one step at a time (claim, run_task) on
# tasks of this module, committed to the test database where it claims them.


@task
def metered_task_returns() -> int:
    return 42


@task
def metered_task_raises() -> None:
    raise RuntimeError("the task failed")


def task_counts(name: str) -> dict[str, float]:
    samples = {
        "started": "tasks_started_total",
        "succeeded": "tasks_succeeded_total",
        "retried": "tasks_retried_total",
        "failed": "tasks_failed_total",
        "timed": "task_duration_seconds_count",
    }
    return {
        key: REGISTRY.get_sample_value(sample, {"task": name}) or 0.0
        for key, sample in samples.items()
    }


def queue_gauges() -> tuple[float | None, float | None]:
    return (
        REGISTRY.get_sample_value("tasks_waiting"),
        REGISTRY.get_sample_value("tasks_oldest_waiting_age_seconds"),
    )


def test_a_task_that_returns_is_counted_started_succeeded_and_timed():
    enqueued = metered_task_returns.enqueue()
    before = task_counts("metered_task_returns")
    worker = Worker(worker_id="metrics-test")

    row = worker.claim()
    assert str(row.id) == str(enqueued.id)
    worker.run_task(row)

    assert task_counts("metered_task_returns") == {
        **before,
        "started": before["started"] + 1,
        "succeeded": before["succeeded"] + 1,
        "timed": before["timed"] + 1,
    }
    assert worker.claim() is None


def test_a_failing_task_is_counted_retried_then_failed(settings):
    settings.TASK_MAX_ATTEMPTS = 2
    settings.TASK_RETRY_BASE_SECONDS = 0
    enqueued = metered_task_raises.enqueue()
    before = task_counts("metered_task_raises")
    worker = Worker(worker_id="metrics-test")

    worker.run_task(worker.claim())
    assert task_counts("metered_task_raises") == {
        **before,
        "started": before["started"] + 1,
        "retried": before["retried"] + 1,
        "timed": before["timed"] + 1,
    }

    worker.run_task(worker.claim())  # the last allowed attempt
    assert task_counts("metered_task_raises") == {
        **before,
        "started": before["started"] + 2,
        "retried": before["retried"] + 1,
        "failed": before["failed"] + 1,
        "timed": before["timed"] + 2,
    }
    assert DBTaskResult.objects.get(id=enqueued.id).status == "FAILED"
    assert worker.claim() is None


def test_the_queue_gauges_count_ready_tasks_and_the_longest_wait():
    worker = Worker(worker_id="metrics-test")
    worker.queue_measure()
    assert queue_gauges() == (0, 0)

    now = timezone.now()
    oldest = metered_task_returns.enqueue()
    metered_task_returns.enqueue()
    # A retry that came due a second ago: ready, and younger than `oldest`.
    retried = metered_task_returns.enqueue()
    # Not ready for an hour: not waiting.
    metered_task_returns.using(run_after=now + timedelta(hours=1)).enqueue()
    DBTaskResult.objects.filter(id=oldest.id).update(enqueued_at=now - timedelta(seconds=600))
    DBTaskResult.objects.filter(id=retried.id).update(
        enqueued_at=now - timedelta(seconds=900), run_after=now - timedelta(seconds=1)
    )

    worker.queue_measure()
    waiting, age = queue_gauges()
    assert waiting == 3
    assert 600 <= age < 660, age

    for _ in range(3):
        worker.run_task(worker.claim())
    worker.queue_measure()
    assert queue_gauges() == (0, 0)


# --- Gunicorn's dead workers (dead_worker_files_merge) -----------------------------


def worker_files(directory, pid: int, values: dict[str, dict[str, float]]) -> None:
    """What a Gunicorn worker leaves in PROMETHEUS_MULTIPROC_DIR: per file
    kind ("counter", "gauge_max", ...), {label value: value} of one metric."""
    for kind, by_label in values.items():
        written = MmapedDict(str(directory / f"{kind}_{pid}.db"))
        for label, value in by_label.items():
            key = mmap_key(f"m_{kind}", f"m_{kind}", ["view"], [label], "help")
            written.write_value(key, value, 0.0)
        written.close()


def collected(directory) -> dict[tuple, float]:
    registry = CollectorRegistry()
    WorkersCollector(registry, path=str(directory))
    return {
        (sample.name, sample.labels.get("view")): sample.value
        for family in registry.collect()
        for sample in family.samples
    }


def test_a_dead_worker_s_files_are_merged_and_nothing_changes_but_the_file_count(tmp_path):
    worker_files(tmp_path, 101, {"counter": {"a": 3, "b": 1}, "gauge_max": {"a": 5}})
    worker_files(tmp_path, 102, {"counter": {"a": 4}, "gauge_max": {"a": 9}})
    worker_files(tmp_path, 103, {"counter": {"a": 10}, "gauge_livesum": {"a": 1}})
    before = collected(tmp_path)
    assert before[("m_counter", "a")] == 17, before

    for pid in (101, 102):  # two workers die, one after the other
        dead_worker_files_merge(pid, str(tmp_path))
    after = collected(tmp_path)
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "counter_103.db",
        "counter_merged.db",
        "gauge_livesum_103.db",
        "gauge_max_merged.db",
    ]

    dead_worker_files_merge(103, str(tmp_path))  # its live gauge goes with it
    assert collected(tmp_path) == {k: v for k, v in before.items() if k[0] != "m_gauge_livesum"}
    assert len(list(tmp_path.iterdir())) == 2
