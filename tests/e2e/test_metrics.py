"""Prometheus metrics from the stack: exact under Gunicorn's workers, never
through nginx's public server, WebSockets and background tasks counted as
they happen.

Each web, asgi and worker container serves its metrics on METRICS_PORT
(9100), on the stack's networks only; the tests container is on both, and
scrapes every replica over `back` (the worker's only network), summing, as
Prometheus' queries would.
"""

import asyncio
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.stack import ping, stack_database, wait_until

pytestmark = pytest.mark.e2e

METRICS_PORT = 9100
# django-tasks-db's table, in the stack's PostgreSQL.
TASKS = "django_tasks_database_dbtaskresult"


def scrape(stack, container) -> dict[tuple, float]:
    """One container's metrics: {(sample name, sorted labels): value}."""
    address = stack.address_of(container)
    response = requests.get(f"http://{address}:{METRICS_PORT}/metrics", timeout=5)
    response.raise_for_status()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def total_on(stack, container, name: str, **labels) -> float:
    """A sample of one container, summed over any label not given."""
    wanted = set(labels.items())
    return sum(
        value
        for (sample, sample_labels), value in scrape(stack, container).items()
        if sample == name and wanted <= set(sample_labels)
    )


def total(stack, service: str, name: str, **labels) -> float:
    """A sample summed over the service's replicas, and over any label not given."""
    return sum(total_on(stack, c, name, **labels) for c in stack.containers(service))


def read_until(read, expected, *, timeout: float = 15) -> None:
    """Poll `read()` until it returns `expected`; a failure shows its last value."""

    def settled() -> bool:
        assert (value := read()) == expected, f"read {value!r}, expected {expected!r}"
        return True

    wait_until(settled, timeout=timeout, what="the metrics")


LOGIN_VIEW = {"view": "admin:login", "method": "GET"}
LOGIN_REQUESTS = "django_http_requests_total_by_view_transport_method_total"
LOGIN_RESPONSES = "django_http_responses_total_by_status_view_method_total"


def login_pages_get(stack, count: int) -> None:
    """`count` GETs of the admin's login page through nginx, ten at a time, so
    that nginx spreads them over several connections and Gunicorn's workers."""

    def get(_):
        return stack.browser().get(stack.url("/admin/login/"), timeout=10).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        assert set(pool.map(get, range(count))) == {200}


def gunicorn_workers_alive(stack, web) -> set[int]:
    """Gunicorn's workers: the children of its master, PID 1's child."""
    code = """
import os
def parent(p):
    return open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1]
pids = [p for p in os.listdir("/proc") if p.isdigit()]
master = [p for p in pids if parent(p) == "1"]
print(" ".join(p for p in pids if parent(p) in master))
"""
    return {int(pid) for pid in stack.run_python(web, code).split()}


def test_requests_through_nginx_are_counted_exactly_over_gunicorn_workers(stack):
    requests_count = 60
    [web] = stack.containers("web")
    assert len(gunicorn_workers_alive(stack, web)) > 1, "the test needs several workers"
    before = total(stack, "web", LOGIN_REQUESTS, **LOGIN_VIEW)
    responses_before = total(stack, "web", LOGIN_RESPONSES, status="200", **LOGIN_VIEW)

    login_pages_get(stack, requests_count)

    # Counted before Gunicorn answers: no need to wait.
    assert total(stack, "web", LOGIN_REQUESTS, **LOGIN_VIEW) == before + requests_count
    assert (
        total(stack, "web", LOGIN_RESPONSES, status="200", **LOGIN_VIEW)
        == responses_before + requests_count
    )
    # More than one worker counted (each in a file of its own, counter_<pid>.db),
    # so the sums above are over workers, as they must be.
    listing = stack.run_python(
        web, "import os; print(' '.join(os.listdir('/tmp/prometheus-multiproc')))"
    )
    counted = {name.removeprefix("counter_") for name in listing.split()}
    assert len(counted & {f"{pid}.db" for pid in gunicorn_workers_alive(stack, web)}) > 1


@pytest.mark.chaos
def test_requests_are_counted_exactly_over_two_web_replicas(stack):
    [first] = stack.containers("web")
    compose = ["docker", "compose", "--project-name", stack.project]
    subprocess.run(
        [*compose, "up", "--detach", "--no-deps", "--no-recreate", "--wait", "--scale", "web=2"],
        check=True,
        capture_output=True,
        env={**os.environ, "COMPOSE_PROFILES": ""},
        timeout=180,
    )
    [second] = [c for c in stack.containers("web") if c.id != first.id]
    try:
        # Until nginx's follower has the new replica, and it has served a request.
        deadline = time.monotonic() + 60
        while not total_on(stack, second, LOGIN_REQUESTS, **LOGIN_VIEW):
            assert time.monotonic() < deadline, "nginx never sent a request to the new replica"
            login_pages_get(stack, 10)

        requests_count = 60
        before = total(stack, "web", LOGIN_REQUESTS, **LOGIN_VIEW)
        login_pages_get(stack, requests_count)
        assert total(stack, "web", LOGIN_REQUESTS, **LOGIN_VIEW) == before + requests_count
    finally:
        second.stop(timeout=30)
        second.remove()
        stack.wait_ready()


def test_latency_is_measured_per_view_by_route_name(stack):
    latency = "django_http_requests_latency_seconds_by_view_method_count"
    before = total(stack, "web", latency, **LOGIN_VIEW)
    login_pages_get(stack, 10)
    # Each request is one more observation of its view's latency.
    assert total(stack, "web", latency, **LOGIN_VIEW) == before + 10
    samples = scrape(stack, stack.containers("web")[0])
    views = {
        dict(labels).get("view")
        for (name, labels) in samples
        if name == "django_http_requests_latency_seconds_by_view_method_bucket"
    }
    assert "admin:login" in views
    assert not any(view.startswith("/") for view in views), views  # never a raw path


def test_database_and_cache_are_measured(stack):
    counts = (
        "django_db_execute_total",
        "django_db_query_duration_seconds_count",
        "django_cache_get_total",
    )
    before = {name: total(stack, "web", name) for name in counts}

    def moved() -> bool:
        # /readyz's checks query PostgreSQL and read the cache, at most once
        # a second in each Gunicorn worker: asked until each count has moved.
        stack.browser().get(stack.url("/readyz"))
        return all(total(stack, "web", name) > before[name] for name in counts)

    wait_until(moved, timeout=15, what=f"each of {', '.join(counts)} moving")


def test_a_killed_worker_neither_loses_nor_doubles_its_counts(stack):
    [web] = stack.containers("web")
    workers = gunicorn_workers_alive(stack, web)
    assert total(stack, "web", "gunicorn_workers") == len(workers)
    login_pages_get(stack, 30)
    before = total(stack, "web", LOGIN_REQUESTS, **LOGIN_VIEW)

    victim = max(workers)
    stack.run_python(web, f"import os, signal; os.kill({victim}, signal.SIGKILL)")
    wait_until(
        lambda: (
            victim not in (alive := gunicorn_workers_alive(stack, web))
            and len(alive) == len(workers)
        ),
        timeout=30,
        what="Gunicorn replacing the killed worker",
    )

    # What the dead worker counted is still counted, once; its gauges are gone.
    assert total(stack, "web", LOGIN_REQUESTS, **LOGIN_VIEW) == before
    read_until(lambda: total(stack, "web", "gunicorn_workers"), len(workers))
    login_pages_get(stack, 20)
    assert total(stack, "web", LOGIN_REQUESTS, **LOGIN_VIEW) == before + 20
    assert 0 <= total(stack, "web", "gunicorn_workers_busy") <= len(workers)


def test_workers_replaced_again_and_again_leave_no_files_to_read(stack):
    # As max_requests replaces workers for as long as the container runs:
    # each dead worker's files are merged, so a scrape reads the live
    # workers' files and the merged ones, however many came and went, and
    # every count is kept.
    [web] = stack.containers("web")
    # deploy/start-web.sh's PROMETHEUS_MULTIPROC_DIR: <kind>_<pid>.db files.
    file_owners = """
import os
print(" ".join(f.rsplit("_", 1)[1][:-3] for f in os.listdir("/tmp/prometheus-multiproc")))
"""
    hup_master = """
import os, signal
def parent(p):
    return open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1]
[master] = [p for p in os.listdir("/proc") if p.isdigit() and parent(p) == "1"]
os.kill(int(master), signal.SIGHUP)
"""
    login_pages_get(stack, 20)
    counted = total(stack, "web", LOGIN_REQUESTS, **LOGIN_VIEW)
    dead: set[int] = set()
    for _ in range(4):
        workers = gunicorn_workers_alive(stack, web)
        stack.run_python(web, hup_master)  # every worker replaced
        wait_until(
            lambda workers=workers: (
                not (alive := gunicorn_workers_alive(stack, web)) & workers
                and len(alive) == len(workers)
            ),
            timeout=60,
            what="Gunicorn replacing every worker",
        )
        dead |= workers
        login_pages_get(stack, 10)
        counted += 10
        read_until(lambda: total(stack, "web", LOGIN_REQUESTS, **LOGIN_VIEW), counted)
        owners = set(stack.run_python(web, file_owners).split())
        assert "merged" in owners
        assert not owners & {str(pid) for pid in dead}, f"files of dead workers: {owners}"


def test_readiness_checks_are_in_the_metrics(stack):
    assert stack.browser().get(stack.url("/readyz")).status_code == 200
    samples = scrape(stack, stack.containers("web")[0])
    for check in ("database", "cache", "channel_layer"):
        assert samples[("readiness_check_ok", (("check", check),))] == 1


async def test_websockets_are_counted_by_consumer_and_close_code(stack):
    consumer = {"consumer": "PingConsumer"}
    # A code a client picks, counted as "other" (no client may add series);
    # no other test closes with one, so other sockets' closes cannot count.
    code = 4321

    def read():
        return {
            "connects": total(stack, "asgi", "websocket_connects_total", **consumer),
            "open": total(stack, "asgi", "websocket_connections_open", **consumer),
            "closes": total(stack, "asgi", "websocket_closes_total", code="other", **consumer),
            "received": total(stack, "asgi", "websocket_messages_received_total", **consumer),
            "sent": total(stack, "asgi", "websocket_messages_sent_total", **consumer),
            "round_trips": total(stack, "asgi", "channel_layer_round_trip_seconds_count"),
        }

    before = await asyncio.to_thread(read)
    pings = 3
    async with stack.ws_connect("/ws/ping/") as connection:
        for _ in range(pings):
            assert "pong" in await ping(connection)
        during = await asyncio.to_thread(read)
        await connection.close(code=code)

    assert during == {
        **before,
        "connects": before["connects"] + 1,
        "open": before["open"] + 1,
        "received": before["received"] + pings,
        "sent": before["sent"] + pings,
        "round_trips": before["round_trips"] + pings,
    }
    # Daphne hands the close to the consumer after the handshake ends.
    expected = {**during, "open": before["open"], "closes": before["closes"] + 1}
    await asyncio.to_thread(read_until, read, expected)


def test_the_worker_counts_the_tasks_it_runs_and_measures_the_queue(stack):
    assert stack.containers("worker"), "the stack runs no worker"
    job = {"task": "sessions_clear"}

    def counts():
        return {
            "started": total(stack, "worker", "tasks_started_total", **job),
            "succeeded": total(stack, "worker", "tasks_succeeded_total", **job),
            "timed": total(stack, "worker", "task_duration_seconds_count", **job),
        }

    def queue():
        """(tasks waiting, the oldest's wait): every worker reports the same
        queue, read from PostgreSQL every few seconds; the rules take the max."""
        samples = [scrape(stack, worker) for worker in stack.containers("worker")]
        return tuple(
            max(sample[(name, ())] for sample in samples)
            for name in ("tasks_waiting", "tasks_oldest_waiting_age_seconds")
        )

    before = counts()
    # Enqueued from a web container, as any app's code enqueues a task, to
    # come due in a few seconds; held meanwhile by this test's row lock,
    # which every worker's claim skips (SKIP LOCKED): ready, and waiting.
    code = (
        "import django; django.setup()\n"
        "from datetime import timedelta\n"
        "from django.utils import timezone\n"
        "from apps.core.tasks.jobs import sessions_clear\n"
        "due = timezone.now() + timedelta(seconds=5)\n"
        "print(sessions_clear.using(run_after=due).enqueue().id)"
    )
    task_id = stack.run_python(stack.containers("web")[0], code).strip()
    # DATABASE_URL is the stack's own database (the unit tests use a copy).
    with stack_database() as held:
        [not_yet_due] = held.execute(
            f"SELECT run_after > now() FROM {TASKS} WHERE id = %s FOR SHARE",
            [task_id],
        ).fetchone()
        assert not_yet_due, "the task came due before the test held it"
        deadline = time.monotonic() + 20
        while (measured := queue())[0] < 1 or measured[1] < 1:
            assert time.monotonic() < deadline, f"the workers never saw it wait: {measured}"
            time.sleep(0.5)
        held.rollback()  # let go: a worker takes it

    expected = {key: value + 1 for key, value in before.items()}
    read_until(counts, expected, timeout=30)
    read_until(queue, (0, 0))


def test_metrics_are_not_served_through_nginx(stack):
    assert stack.browser().get(stack.url("/metrics")).status_code == 404
    assert stack.browser().get(stack.url("/stub_status")).status_code == 404


def test_metrics_port_is_published_by_no_container(stack):
    for service in ("nginx", "web", "asgi", "worker"):
        for container in stack.each(service):
            published = container.attrs["NetworkSettings"]["Ports"] or {}
            assert not published.get(f"{METRICS_PORT}/tcp"), (service, published)


def test_nginx_stub_status_on_its_internal_port(stack):
    response = requests.get("http://nginx:8081/stub_status", timeout=5)
    assert response.status_code == 200
    assert response.text.startswith("Active connections:")
