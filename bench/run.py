"""The benchmark's scenarios, run in the bench container on the stack's network.

bench/run.sh starts the stack and this; docs/performance.md explains the
scenarios and the figures. Every comparison alternates its two sides, round
after round (A B, then B A, ...), so that whatever else the machine does at
the time weighs on both alike, and reports the medians. BENCH_QUICK=1 runs
every scenario briefly; its figures only show that the harness works.
"""

import asyncio
import contextlib
import json
import math
import os
import socket
import statistics
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import docker
import loads
import report
import spy_summary


@dataclass(frozen=True)
class Plan:
    rounds: int  # alternations of A and B in each comparison
    http_seconds: float  # one wrk run
    echo_clients: int
    echo_seconds: float
    broadcast_clients: int
    broadcasts_per_round: int
    idle_connections: int
    idle_hold_seconds: float
    mix_rate: float  # 9: requests a second, offered to both sides alike
    mix_slow_every: int  # 9: one request in this many waits on I/O
    mix_seconds: float  # 9: one side's round
    tasks_batch: int  # 11: tasks enqueued at once, for one worker's throughput
    tasks_rate: float  # 11: tasks a second, enqueued one a request, open-loop
    tasks_seconds: float  # 11: one round of that steady load
    flood_lanes: int  # 13: the flooder's sockets at once
    flood_measurers: int  # 13: clients measuring their round trips meanwhile
    flood_seconds: float  # 13: one side's round
    rest_seconds: float  # 15: the stack at rest, measured this long


FULL = Plan(
    rounds=5,
    http_seconds=10,
    echo_clients=32,
    echo_seconds=10,
    broadcast_clients=500,
    # 200 a side: with fewer, "p99" is only the slowest one or two.
    broadcasts_per_round=40,
    idle_connections=10_000,
    idle_hold_seconds=60,
    # One slow request a second among 39 fast ones: the common default's one
    # worker is then busy about half the time (200 ms on the slow one, 39
    # pages at 3-8 ms), so it keeps up, and only its tail shows the wait.
    # Well under what it serves flat out (100-370 req/s here), so that a
    # busy machine does not overload it and turn the tail into a queue that
    # grows without bound.
    mix_rate=40,
    mix_slow_every=40,
    # 780 fast requests a round: a p99 of more than a handful of them.
    mix_seconds=20,
    # Long enough (6-14 s of one worker's time here) that starting and
    # finishing weigh little against the steady pace between.
    tasks_batch=1000,
    # A site's steady background work, under what one worker runs flat out
    # (74-157 tasks a second here, on a loaded machine), so that the figure is
    # how soon a worker starts a task; where the machine leaves the worker
    # less than that, a queue grows, and the p99 shows it (docs/performance.md).
    # 1,000 tasks a round, 5,000 pooled: a p99 of 50 of them.
    tasks_rate=50,
    tasks_seconds=20,
    # Several sockets, as the review asks: while one lane's socket is being
    # closed or opened, the others keep sending.
    flood_lanes=4,
    # Eight honest clients at 4 pings a second each: 640 round trips a
    # round, a p99 of more than a handful of them.
    flood_measurers=8,
    flood_seconds=20,
    # Health checks run every 3 to 5 s, the follower every 2: a few dozen of
    # each, so that where a window starts or ends weighs little.
    rest_seconds=60,
)
QUICK = Plan(
    rounds=2,
    http_seconds=2,
    echo_clients=8,
    echo_seconds=2,
    broadcast_clients=50,
    broadcasts_per_round=3,
    idle_connections=200,
    idle_hold_seconds=3,
    mix_rate=40,
    mix_slow_every=10,
    mix_seconds=3,
    tasks_batch=100,
    tasks_rate=50,
    tasks_seconds=3,
    flood_lanes=4,
    flood_measurers=8,
    flood_seconds=3,
    rest_seconds=5,
)

STARTED = time.monotonic()
CGROUP = Path("/host/cgroup")

# The benchmark's pages (bench/app/): a typical page, which writes the
# visitor's session and renders a template, and a public one.
PAGE = "/bench/page/"
PUBLIC_PAGE = "/bench/public/"
# A page that waits 200 ms on I/O, as one calling an external API would.
SLOW_PAGE = "/bench/slow/"
# The page, which also enqueues one task (the probe, which does nothing).
ENQUEUE_PAGE = "/bench/enqueue/"
# The probe tasks' own page: enqueue many, read their times, delete them.
TASKS_API = "http://web:8000/bench/tasks/"
# A returning visitor's page: it reads the session its cookie names, writes
# nothing, and renders a small template (scenario 12).
SESSION_PAGE = "/bench/session/"
# The stack's database, as DATABASE_URL names it (docker-compose.yml).
DATABASE = "app"


def progress(text: str) -> None:
    print(f"[{time.monotonic() - STARTED:5.0f} s] {text}", flush=True)


class Stack:
    """The compose project this container belongs to, through the Docker socket."""

    def __init__(self):
        self.docker = docker.from_env(version="auto")
        self.me = self.docker.containers.get(socket.gethostname())
        self.project = self.me.labels["com.docker.compose.project"]

    def containers(self, service: str | None = None) -> list:
        labels = [f"com.docker.compose.project={self.project}"]
        if service:
            labels.append(f"com.docker.compose.service={service}")
        found = self.docker.containers.list(filters={"label": labels})
        return [c for c in found if c.id != self.me.id]

    def cgroup_file(self, container, controller: str, v1_name: str, v2_name: str) -> Path:
        """A container's cgroup file, read from the host's cgroup tree (mounted
        at /host/cgroup by bench/compose.yml): version 1 (cgroupfs) or 2
        (cgroupfs or systemd driver)."""
        for candidate in (
            CGROUP / controller / "docker" / container.id / v1_name,
            CGROUP / "docker" / container.id / v2_name,
            CGROUP / "system.slice" / f"docker-{container.id}.scope" / v2_name,
        ):
            if candidate.exists():
                return candidate
        raise FileNotFoundError(f"no cgroup {v2_name} for {container.name} under {CGROUP}")

    def cpu_seconds(self) -> float:
        """CPU time used so far by every container of the stack, the load
        generator (this container) excepted."""
        return sum(self.cpu_seconds_by_service().values())

    def cpu_seconds_by_service(self) -> dict[str, float]:
        """The same, per compose service (replicas together)."""
        by_service: dict[str, float] = {}
        for container in self.containers():
            path = self.cgroup_file(container, "cpuacct", "cpuacct.usage", "cpu.stat")
            text = path.read_text()
            if path.name == "cpu.stat":  # "usage_usec N" among other lines
                seconds = int(text.split("usage_usec")[1].split()[0]) / 1e6
            else:
                seconds = int(text) / 1e9
            service = container.labels["com.docker.compose.service"]
            by_service[service] = by_service.get(service, 0.0) + seconds
        return by_service

    def cpu_limits(self) -> dict[str, str]:
        """Each long-running service's CPU limit, as Docker was given it."""
        limits = {}
        for container in self.containers():
            service = container.labels["com.docker.compose.service"]
            nano = container.attrs["HostConfig"].get("NanoCpus") or 0
            quota = container.attrs["HostConfig"].get("CpuQuota") or 0
            period = container.attrs["HostConfig"].get("CpuPeriod") or 100_000
            cpus = nano / 1e9 if nano else quota / period if quota > 0 else None
            limits[service] = f"{cpus:g}" if cpus else "none"
        return limits

    def start_healthy(self, service: str, *, timeout: float = 90) -> None:
        """Start a service's created containers and wait until Docker says
        they are healthy."""
        containers = self.docker.containers.list(
            all=True,
            filters={
                "label": [
                    f"com.docker.compose.project={self.project}",
                    f"com.docker.compose.service={service}",
                ]
            },
        )
        if not containers:
            raise RuntimeError(f"no {service} container: bench/run.sh creates it")
        for container in containers:
            container.start()
        deadline = time.monotonic() + timeout
        while True:
            states = []
            for container in containers:
                container.reload()
                states.append(container.attrs["State"].get("Health", {}).get("Status"))
            if all(state == "healthy" for state in states):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{service} not healthy after {timeout:.0f} s: {states}")
            time.sleep(0.5)

    def stop(self, service: str) -> None:
        for container in self.containers(service):
            container.stop(timeout=5)

    def memory_bytes(self, service: str) -> int:
        """Memory in use by a service's containers, as `docker stats` counts it:
        usage less the page cache that could be dropped."""
        total = 0
        for container in self.containers(service):
            usage = self.cgroup_file(container, "memory", "memory.usage_in_bytes", "memory.current")
            stat = self.cgroup_file(container, "memory", "memory.stat", "memory.stat")
            fields = dict(line.split() for line in stat.read_text().splitlines())
            inactive = fields.get("total_inactive_file", fields.get("inactive_file", "0"))
            total += int(usage.read_text()) - int(inactive)
        return total


def machine(stack: Stack) -> dict:
    """The machine and the limits the stack runs under, for the report: a
    figure is only comparable with figures from the same of both."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": memory_kib / 1024**2,
        "load_before": os.getloadavg()[0],
        "cpu_limits": stack.cpu_limits(),
    }


def addresses(service: str, port: int) -> list[tuple[str, int]]:
    """Every replica of a service, as Docker's DNS lists them."""
    found = {info[4][0] for info in socket.getaddrinfo(service, port, type=socket.SOCK_STREAM)}
    return [(address, port) for address in sorted(found)]


# --- comparisons ----------------------------------------------------------------


def numbers(run: dict) -> list[str]:
    """The keys of a round's plain figures (not errors, not breakdowns)."""
    return [k for k, v in run.items() if isinstance(v, int | float) and k != "errors"]


def finite_median(values: list[float]) -> float:
    """The median of the values that are numbers (a round may have none for
    a figure: 13's Daphne CPU in a round where it restarted), NaN if none is."""
    found = [v for v in values if math.isfinite(v)]
    return statistics.median(found) if found else math.nan


def side_summary(runs: list[dict]) -> dict:
    """The medians of one side's rounds, and every round's numbers."""
    summary = {k: finite_median([run[k] for run in runs]) for k in numbers(runs[0])}
    summary["errors"] = sum(run.get("errors", 0) for run in runs)
    if "cpu_ms_by_service" in runs[0]:
        services = sorted({s for run in runs for s in run["cpu_ms_by_service"]})
        summary["cpu_ms_by_service"] = {
            s: statistics.median(run["cpu_ms_by_service"].get(s, 0.0) for run in runs)
            for s in services
        }
    summary["rounds"] = runs
    return summary


def alternate(plan: Plan, label: str, sides: dict, measure) -> dict:
    """Measure each side once per round, alternating which goes first, and
    return each side's medians plus the median of the per-round A/B ratios of
    every figure."""
    names = list(sides)
    runs = {name: [] for name in names}
    for round_number in range(plan.rounds):
        order = names if round_number % 2 == 0 else names[::-1]
        for name in order:
            result = measure(sides[name])
            runs[name].append(result)
            shown = ", ".join(f"{k} {result[k]:.4g}" for k in numbers(result))
            progress(f"{label} round {round_number + 1}/{plan.rounds}: {name}: {shown}")
    a, b = names
    ratios = {key: median_ratio(runs[a], runs[b], key) for key in numbers(runs[a][0])}
    return {"sides": {name: side_summary(runs[name]) for name in names}, "ratios": ratios}


def median_ratio(a_runs: list[dict], b_runs: list[dict], key: str) -> float:
    """The median of the per-round A/B ratios of `key`. A round where B is 0
    (wrk got no answer within its 2 s timeout: an overloaded side), or where
    a side has no figure (NaN), has no ratio; with none left the figure is
    missing (NaN), not a crash."""
    ratios = [a[key] / b[key] for a, b in zip(a_runs, b_runs, strict=True) if b[key]]
    return finite_median(ratios)


def cpu_by_service_ms(before: dict, after: dict, requests: int) -> dict[str, float]:
    """CPU milliseconds per request of each service between two readings."""
    return {
        service: (after[service] - before.get(service, 0.0)) * 1000 / max(requests, 1)
        for service in sorted(after)
    }


def http_measure(stack: Stack, plan: Plan):
    def measure(url: str) -> dict:
        cpu_before = stack.cpu_seconds_by_service()
        result = loads.wrk(url, seconds=plan.http_seconds)
        cpu = cpu_by_service_ms(cpu_before, stack.cpu_seconds_by_service(), result.requests)
        return {
            "rate": result.rate,
            "p50_ms": result.p50_ms,
            "p99_ms": result.p99_ms,
            "cpu_s_per_1k": sum(cpu.values()),
            "errors": result.errors,
            "cpu_ms_by_service": cpu,
        }

    return measure


def http_compare(stack: Stack, plan: Plan, label: str, sides: dict[str, str]) -> dict:
    for url in sides.values():  # warm up: connections, caches, lazy imports
        loads.wrk(url, seconds=1)
    return alternate(plan, label, sides, http_measure(stack, plan))


def paced_compare(stack: Stack, plan: Plan, label: str, *, slow_every: int) -> dict:
    """The page at the same fixed rate on both sides, open-loop: 9, with one
    slow request in `slow_every` among them; 4's tail latency, with none."""

    def measure(address) -> dict:
        cpu_before = stack.cpu_seconds_by_service()
        result = asyncio.run(
            loads.paced(
                address,
                fast_path=PAGE,
                slow_path=SLOW_PAGE,
                rate=plan.mix_rate,
                slow_every=slow_every,
                seconds=plan.mix_seconds,
            )
        )
        cpu = cpu_by_service_ms(cpu_before, stack.cpu_seconds_by_service(), result.requests)
        return {
            **asdict(result),
            "cpu_s_per_1k": sum(cpu.values()),
            "cpu_ms_by_service": cpu,
        }

    sides = {"this project": ("nginx", 8080), "common default": ("nginx-default", 8080)}
    for host, port in sides.values():  # warm up: connections, caches, lazy imports
        loads.wrk(f"http://{host}:{port}{PAGE}", seconds=1)
    return alternate(plan, label, sides, measure)


def profile_side(stack: Stack, service: str, url: str, seconds: float) -> dict:
    """Load `url` with wrk while py-spy samples `service`'s Gunicorn (a sidecar
    of the bench image in its process namespace, with SYS_PTRACE, which the
    stack's own containers never get), and read every container's CPU."""
    target = stack.containers(service)[0]
    sidecar = stack.docker.containers.run(
        stack.me.image.id,
        ["python", "spy.py", str(int(seconds))],
        pid_mode=f"container:{target.id}",
        cap_add=["SYS_PTRACE"],
        network_mode="none",
        # Not the stack's: the image's compose labels would make its CPU count.
        labels={"com.docker.compose.project": f"{stack.project}-profiler"},
        detach=True,
    )
    try:
        cpu_before = stack.cpu_seconds_by_service()
        result = loads.wrk(url, seconds=seconds + 1)
        cpu = cpu_by_service_ms(cpu_before, stack.cpu_seconds_by_service(), result.requests)
        # py-spy writes its stacks when the duration is over; on a busy machine
        # that can take a while after wrk is done.
        if sidecar.wait(timeout=seconds + 120)["StatusCode"] != 0:
            raise RuntimeError("py-spy failed: " + sidecar.logs(stdout=False).decode()[-2000:])
        collapsed = sidecar.logs(stderr=False).decode()
    finally:
        sidecar.remove(force=True)
    return {
        "rate": result.rate,
        "cpu_ms_by_service": cpu,
        "profile": spy_summary.summary(collapsed),
        "collapsed": collapsed,
    }


def profile_compare(stack: Stack, plan: Plan) -> dict:
    """Where the CPU goes on the page, each side sampled once (BENCH_PROFILE=1)."""
    sides = {
        "this project": ("web", f"http://nginx:8080{PAGE}"),
        "common default": ("web-default", f"http://nginx-default:8080{PAGE}"),
    }
    # What the stack spends with no request at all (health checks, nginx's
    # follower polling /readyz, Redis' and PostgreSQL's timers): CPU ms a second.
    before = stack.cpu_seconds_by_service()
    time.sleep(plan.http_seconds)
    idle = cpu_by_service_ms(before, stack.cpu_seconds_by_service(), 1)
    idle = {service: ms / plan.http_seconds for service, ms in idle.items()}
    found = {}
    for name, (service, url) in sides.items():
        loads.wrk(url, seconds=1)  # warm up
        found[name] = profile_side(stack, service, url, plan.http_seconds)
        progress(f"profile: {name}: {found[name]['profile']['samples']} samples")
        # For flame graphs; the report keeps the summary.
        collapsed = found[name].pop("collapsed")
        Path(f"/results/profile-{name.replace(' ', '-')}.txt").write_text(collapsed)
    return {"sides": found, "idle_ms_per_s": idle}


# The stack's own services, as docker-compose.yml runs them (asgi with the
# benchmark's two replicas); not the benchmark's variants.
STACK_SERVICES = ("nginx", "web", "asgi", "worker", "redis", "db")


def at_rest(stack: Stack, plan: Plan) -> dict:
    """15: what the stack's containers spend with no request at all (health
    checks, nginx's follower asking web's /readyz, the worker's polling and
    heartbeat, the servers' timers), CPU ms a second, after a moment to settle
    from their start."""
    time.sleep(plan.rest_seconds / 6)
    before = stack.cpu_seconds_by_service()
    time.sleep(plan.rest_seconds)
    after = stack.cpu_seconds_by_service()
    by_service = {
        service: (after[service] - before.get(service, 0.0)) * 1000 / plan.rest_seconds
        for service in STACK_SERVICES
        if service in after
    }
    return {"ms_per_s": sum(by_service.values()), "ms_per_s_by_service": by_service}


def observability_compare(stack: Stack, plan: Plan) -> dict:
    """10: the page through the stack as shipped, and through the same web and
    nginx with metrics off and plain-text logs (web-quiet, nginx-quiet: started
    for this scenario alone)."""
    stack.start_healthy("web-quiet")
    stack.start_healthy("nginx-quiet")
    try:
        sides = {
            "as shipped": f"http://nginx:8080{PAGE}",
            "metrics off, text logs": f"http://nginx-quiet:8080{PAGE}",
        }
        return http_compare(stack, plan, "10", sides)
    finally:
        stack.stop("nginx-quiet")
        stack.stop("web-quiet")


# --- 11: background tasks ---------------------------------------------------------


def tasks_api(method: str = "GET", **params) -> dict:
    """The probe tasks' page (bench/app/views.py `tasks`), straight to Gunicorn."""
    # The URL is fixed (TASKS_API, http://web:8000/...); only the query varies.
    request = urllib.request.Request(  # noqa: S310
        f"{TASKS_API}?{urllib.parse.urlencode(params)}",
        method=method,
        headers={"Host": loads.HOST},
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        return json.loads(response.read())


def tasks_wait(since: float, *, expected: int, timeout: float) -> dict:
    """Poll until at least `expected` probes enqueued since `since` are there and
    all finished, then return their times and pickup delays."""
    deadline = time.monotonic() + timeout
    while True:
        found = tasks_api(since=since)
        if found["count"] >= expected and not found["unfinished"]:
            return tasks_api(since=since, delays=1)
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{found['unfinished']} of {found['count']} tasks ({expected} expected) "
                f"not finished after {timeout:.0f} s"
            )
        time.sleep(0.25)


def one_worker(stack: Stack) -> None:
    running = len(stack.containers("worker"))
    if running != 1:
        raise RuntimeError(f"{running} worker containers running: the scenario measures one")


def enqueue_compare(stack: Stack, plan: Plan) -> dict:
    """11: the page enqueuing one task against the same page enqueuing none,
    through nginx, with the worker stopped on both sides: the tasks pile up
    (and are deleted after), so both sides are measured alike and the figure
    is what the enqueue costs the request, not what running the task costs."""
    stack.stop("worker")
    try:
        sides = {
            "enqueues one task": f"http://nginx:8080{ENQUEUE_PAGE}",
            "enqueues nothing": f"http://nginx:8080{PAGE}",
        }
        for url in sides.values():  # warm up: connections, caches, lazy imports
            loads.wrk(url, seconds=1)
        measure = http_measure(stack, plan)

        def measure_web(url: str) -> dict:
            result = measure(url)
            result["web_cpu_ms"] = result["cpu_ms_by_service"].get("web", 0.0)
            return result

        comparison = alternate(plan, "11 enqueue", sides, measure_web)
        comparison["piled_up"] = tasks_api("DELETE")["deleted"]
        return comparison
    finally:
        # Whatever happened, no pile of probes left for the restarted worker.
        try:
            tasks_api("DELETE")
        finally:
            stack.start_healthy("worker")


def worker_throughput(stack: Stack, plan: Plan) -> dict:
    """11: what one worker carries: a batch of probes enqueued at once (in one
    transaction), from the first one's start to the last one's finish, as
    the tasks' table records them; median of the rounds."""
    one_worker(stack)
    runs = []
    for round_number in range(plan.rounds):
        since = tasks_api()["now"]
        cpu_before = stack.cpu_seconds_by_service()
        tasks_api("POST", count=plan.tasks_batch)
        found = tasks_wait(since, expected=plan.tasks_batch, timeout=60 + plan.tasks_batch / 10)
        cpu = cpu_by_service_ms(cpu_before, stack.cpu_seconds_by_service(), found["count"])
        tasks_api("DELETE")  # each round on a table alike
        seconds = found["last_finished"] - found["first_started"]
        runs.append(
            {
                "rate": found["count"] / seconds,
                "seconds": seconds,
                "worker_cpu_ms_per_task": cpu.get("worker", 0.0),
                "db_cpu_ms_per_task": cpu.get("db", 0.0),
                "cpu_s_per_1k": sum(cpu.values()),
                "errors": found["failed"],
                "cpu_ms_by_service": cpu,
            }
        )
        progress(
            f"11 throughput round {round_number + 1}/{plan.rounds}: {found['count']} tasks "
            f"in {seconds:.2f} s, {runs[-1]['rate']:.0f} tasks/s, worker "
            f"{runs[-1]['worker_cpu_ms_per_task']:.2f} CPU ms a task"
        )
    return {"batch": plan.tasks_batch, **side_summary(runs)}


def worker_pickup(stack: Stack, plan: Plan) -> dict:
    """11: how soon one worker starts a task (enqueued_at to started_at), at a
    steady tasks_rate: the page that enqueues one, sent open-loop through
    nginx (loads.paced). The delays of every round pooled, as 6 pools its."""
    one_worker(stack)
    runs, delays = [], []
    for round_number in range(plan.rounds):
        since = tasks_api()["now"]
        cpu_before = stack.cpu_seconds_by_service()
        started = time.monotonic()
        load = asyncio.run(
            loads.paced(
                ("nginx", 8080),
                fast_path=ENQUEUE_PAGE,
                rate=plan.tasks_rate,
                seconds=plan.tasks_seconds,
            )
        )
        found = tasks_wait(
            since, expected=load.requests - load.errors, timeout=60 + plan.tasks_seconds
        )
        elapsed = time.monotonic() - started
        cpu_after = stack.cpu_seconds_by_service()
        cpu = cpu_by_service_ms(cpu_before, cpu_after, found["count"])
        tasks_api("DELETE")
        delays += found["pickup_ms"]
        worker_seconds = cpu_after.get("worker", 0.0) - cpu_before.get("worker", 0.0)
        runs.append(
            {
                "tasks": found["count"],
                "p50_ms": loads.percentile(found["pickup_ms"], 50),
                "p99_ms": loads.percentile(found["pickup_ms"], 99),
                "max_ms": max(found["pickup_ms"], default=math.nan),
                "request_p50_ms": load.fast_p50_ms,
                "request_p99_ms": load.fast_p99_ms,
                "worker_cpu_ms_per_task": cpu.get("worker", 0.0),
                # The worker's share of a core, from the round's start until
                # its last task was seen finished.
                "worker_cpu_share": worker_seconds / elapsed,
                "errors": load.errors + found["failed"],
                "cpu_ms_by_service": cpu,
            }
        )
        progress(
            f"11 pickup round {round_number + 1}/{plan.rounds}: {found['count']} tasks at "
            f"{plan.tasks_rate:g}/s: p50 {runs[-1]['p50_ms']:.1f} ms, "
            f"p99 {runs[-1]['p99_ms']:.1f} ms, max {runs[-1]['max_ms']:.1f} ms"
        )
    return {
        "offered_rate": plan.tasks_rate,
        "seconds": plan.tasks_seconds,
        "tasks": len(delays),
        "p50_ms": loads.percentile(delays, 50),
        "p99_ms": loads.percentile(delays, 99),
        "rounds": side_summary(runs),
        "delays_ms": [round(d, 2) for d in delays],
    }


# --- 12: session copies -----------------------------------------------------------


def psql(stack: Stack, *statements: str) -> str:
    """Run statements in the stack's database, one at a time (ALTER SYSTEM
    refuses a transaction), as PostgreSQL's superuser over the db container's
    own socket (peer authentication: no password read), and return the
    output: unaligned, one row a line, columns split by "|"."""
    db = stack.containers("db")[0]
    command = ["psql", "--no-psqlrc", "--no-align", "--tuples-only", "--set", "ON_ERROR_STOP=1"]
    command += ["--username", "postgres", "--dbname", DATABASE]
    for statement in statements:
        command += ["--command", statement]
    code, output = db.exec_run(command, user="postgres")
    if code != 0:
        raise RuntimeError(f"psql failed ({code}): {output.decode()[-1000:]}")
    return output.decode().strip()


def pg_stat_track(stack: Stack, track: str) -> None:
    """What pg_stat_statements counts: "top" (every statement clients send) or
    "none". bench/compose.yml loads it into the bench's PostgreSQL; main()
    has it count nothing (so that it costs the other scenarios nothing), and
    scenario 12 turns it on for its own time (pg_stat_tracking). A backend
    takes the new setting before its next statement but one."""
    psql(
        stack,
        "CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
        f"ALTER SYSTEM SET pg_stat_statements.track = '{track}'",
        "SELECT pg_reload_conf()",
    )


@contextlib.contextmanager
def pg_stat_tracking(stack: Stack):
    """pg_stat_statements counting every statement, for the time of the block."""
    pg_stat_track(stack, "top")
    try:
        yield
    finally:
        pg_stat_track(stack, "none")


# Every statement run in the stack's database so far, and those that name
# django_session (the session's SELECT; a save's UPDATE, which this page never
# makes). Why pg_stat_statements: it is PostgreSQL's own count of what each
# client sent, every statement (Django's connection health check, `SELECT 1`,
# included, which a count of django_session's scans would miss), and it counts
# a statement as it ends, in shared memory, where pg_stat_database's and
# pg_stat_user_tables' counters reach the view only when a backend flushes
# them (PostgreSQL 15+: lazily, a second or more after). So once wrk is done,
# every query of every request it counted is in these sums. What they also
# hold: the rest of the stack's queries meanwhile (the worker's polling every
# 0.25 s, its heartbeat, nginx's follower asking web's /readyz every 2 s),
# the same few a second on both sides; the session column has none of them.
# Only the stack's database (psql's, DATABASE); this query itself is left out.
STATEMENT_CALLS = """
SELECT coalesce(sum(calls), 0),
       coalesce(sum(calls) FILTER (WHERE query ILIKE '%django_session%'), 0)
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND query NOT ILIKE '%pg_stat_statements%'
"""


def statement_calls(stack: Stack) -> tuple[int, int]:
    total, session = psql(stack, STATEMENT_CALLS).split("|")
    return int(total), int(session)


def session_cookie() -> str:
    """A session to read: one visit to the page, straight to Gunicorn, which
    stores its visit counter in a new session; the Cookie header naming it."""
    request = urllib.request.Request(f"http://web:8000{PAGE}", headers={"Host": loads.HOST})
    # The URL is fixed above; nothing in it varies.
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        cookies = response.headers.get_all("Set-Cookie") or []
    if not cookies:
        raise RuntimeError(f"{PAGE} set no cookie: no session to read")
    return "; ".join(cookie.split(";", 1)[0] for cookie in cookies)


def session_copies_compare(stack: Stack, plan: Plan) -> dict:
    """12: a returning visitor's page, which reads its session, straight to
    Gunicorn: the stack's web (copies on, the stack's worker vouching for
    them) against web-nocopy, the same with SESSION_COPY_SECONDS=0 (started
    for this scenario alone). Both read the same session, one cookie on every
    request. Per side: web's CPU per request (its own container), and the
    database's statements per request (pg_stat_statements)."""
    if not stack.containers("worker"):
        raise RuntimeError("no worker running: nothing vouches for the copies")
    stack.start_healthy("web-nocopy")
    try:
        with pg_stat_tracking(stack):
            headers = (f"Cookie: {session_cookie()}",)
            sides = {
                "copies on": ("web", f"http://web:8000{SESSION_PAGE}"),
                "copies off": ("web-nocopy", f"http://web-nocopy:8000{SESSION_PAGE}"),
            }
            # Warm up: connections, lazy imports, the session's copy made,
            # and every backend on pg_stat_statements' new setting.
            for _, url in sides.values():
                loads.wrk(url, seconds=1, headers=headers)

            def measure(side: tuple[str, str]) -> dict:
                service, url = side
                calls_before = statement_calls(stack)
                cpu_before = stack.cpu_seconds_by_service()
                result = loads.wrk(url, seconds=plan.http_seconds, headers=headers)
                cpu_after = stack.cpu_seconds_by_service()
                calls_after = statement_calls(stack)
                cpu = cpu_by_service_ms(cpu_before, cpu_after, result.requests)
                requests = max(result.requests, 1)
                return {
                    "rate": result.rate,
                    "p50_ms": result.p50_ms,
                    "p99_ms": result.p99_ms,
                    "web_cpu_ms": cpu.get(service, 0.0),
                    "queries": (calls_after[0] - calls_before[0]) / requests,
                    "session_queries": (calls_after[1] - calls_before[1]) / requests,
                    "cpu_s_per_1k": sum(cpu.values()),
                    "errors": result.errors,
                    "cpu_ms_by_service": cpu,
                }

            return alternate(plan, "12 session copies", sides, measure)
    finally:
        stack.stop("web-nocopy")


# --- 14: the connection pool -----------------------------------------------------


def pool_compare(stack: Stack, plan: Plan) -> dict:
    """14: the page (it writes the visitor's session: PostgreSQL on every
    request) straight to Gunicorn: the stack's web, one connection a process
    in psycopg's pool (DATABASE_POOL_SIZE=1, the connection budget), against
    web-nopool, a connection kept per thread (DATABASE_POOL_SIZE=0, started
    for this scenario alone). Per side: web's CPU per request (its own
    container), and the whole stack's."""
    stack.start_healthy("web-nopool")
    try:
        sides = {
            "pool": ("web", f"http://web:8000{PAGE}"),
            "no pool": ("web-nopool", f"http://web-nopool:8000{PAGE}"),
        }
        # Warm up: connections (every thread's, on the side without a pool),
        # lazy imports.
        for _, url in sides.values():
            loads.wrk(url, seconds=1)
        measure_url = http_measure(stack, plan)

        def measure(side: tuple[str, str]) -> dict:
            service, url = side
            result = measure_url(url)
            result["web_cpu_ms"] = result["cpu_ms_by_service"].get(service, 0.0)
            return result

        return alternate(plan, "14 pool", sides, measure)
    finally:
        stack.stop("web-nopool")


# --- 13: one client's flood -------------------------------------------------------

# An honest client's pace: a ping every 0.25 s, 4 a second, within
# production's budget of 5 (bench/budget_settings.py), so never refused.
PING_INTERVAL = 0.25
# The flooder's CPU limit. Unlimited, it took a whole core of the machine's
# two, which on a deployment is the attacker's own machine's, and left
# Daphne half of one: the ratio then measured the load generator's share of
# the machine as much as the server. Half a core, beside Daphne's one (its
# limit), leaves the rest to the measuring clients, Redis and the others.
FLOODER_CPUS = 0.5
# Daphne is quiet again (after the flood's frames already in its buffers are
# read) when it uses less than this share of its core.
QUIET_CPU_SHARE = 0.2


def flood_daphne(stack: Stack):
    """asgi-flood's container, its state read afresh: running or not (Docker
    restarting it after it was killed for memory, say)."""
    labels = [
        f"com.docker.compose.project={stack.project}",
        "com.docker.compose.service=asgi-flood",
    ]
    (container,) = stack.docker.containers.list(all=True, filters={"label": labels})
    return container


def flood_daphne_cpu(stack: Stack) -> float | None:
    """asgi-flood's CPU seconds so far; None while it restarts (no cgroup)."""
    try:
        return stack.cpu_seconds_by_service().get("asgi-flood")
    except FileNotFoundError:
        return None


def daphne_quiet(stack: Stack, *, timeout: float = 120) -> float:
    """Wait until asgi-flood is healthy and its CPU over half a second is
    below QUIET_CPU_SHARE of a core; return the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        healthy = flood_daphne(stack).attrs["State"].get("Health", {}).get("Status") == "healthy"
        before = flood_daphne_cpu(stack)
        time.sleep(0.5)
        after = flood_daphne_cpu(stack)
        if healthy and None not in (before, after) and after - before < QUIET_CPU_SHARE * 0.5:
            return time.monotonic() - started
    raise RuntimeError(f"asgi-flood still busy or unhealthy after {timeout:.0f} s")


def flooder_start(stack: Stack, address: tuple[str, int], lanes: int):
    """bench/flood.py in a container of its own on the stack's front network,
    under FLOODER_CPUS, once its first line says it is flooding."""
    network = f"{stack.project}_front"
    if network not in stack.me.attrs["NetworkSettings"]["Networks"]:
        raise RuntimeError(f"no network {network}: the flooder could not reach asgi-flood")
    flooder = stack.docker.containers.run(
        stack.me.image.id,
        ["python", "flood.py", address[0], str(address[1]), str(lanes)],
        network=network,
        nano_cpus=int(FLOODER_CPUS * 1e9),
        # Not the stack's: the image's compose labels would make its CPU count.
        labels={"com.docker.compose.project": f"{stack.project}-flooder"},
        detach=True,
    )
    deadline = time.monotonic() + 60
    while b"flooding" not in flooder.logs(stderr=False):
        flooder.reload()
        if flooder.status == "exited" or time.monotonic() > deadline:
            logs = flooder.logs().decode()[-2000:]
            flooder.remove(force=True)
            raise RuntimeError(f"the flooder did not start: {logs}")
        time.sleep(0.1)
    # Its sockets open and sending before the measuring starts.
    time.sleep(1)
    return flooder


def flooder_stop(flooder) -> loads.FloodResult:
    """SIGTERM, and the counts it prints on its way out."""
    try:
        flooder.kill(signal="SIGTERM")
        if flooder.wait(timeout=60)["StatusCode"] != 0:
            raise RuntimeError("the flooder failed: " + flooder.logs().decode()[-2000:])
        last = flooder.logs(stderr=False).decode().strip().splitlines()[-1]
        return loads.FloodResult(**json.loads(last))
    finally:
        flooder.remove(force=True)


def flood_compare(stack: Stack, plan: Plan) -> dict:
    """13: honest clients' round trips on one Daphne replica while one other
    client floods it with frames, and with no flood. asgi-flood (started for
    this scenario alone) is asgi with production's message budget: the
    flooder's frames over it are refused before any work, and its sockets
    closed (4008), which it reopens at once. Every socket straight to it,
    each client with an address of its own (loads.ws_connect with a client). The
    flooder runs in a container of its own (flooder_start), so that its work
    never delays the measuring clients' event loop, and under a CPU limit.
    Each side starts with Daphne quiet, and ends when it is quiet again: the
    time that takes after a flood is the flood's too."""
    stack.start_healthy("asgi-flood")
    address = ("asgi-flood", 8001)
    try:
        # Warm up: lazy imports, the channel layer's connections.
        asyncio.run(
            loads.paced_pings(
                address, clients=plan.flood_measurers, interval=PING_INTERVAL, seconds=1
            )
        )

        def measure(flooding: bool) -> dict:
            daphne_quiet(stack)
            restarts_before = flood_daphne(stack).attrs["RestartCount"]
            flooder = flooder_start(stack, address, plan.flood_lanes) if flooding else None
            found = loads.FloodResult(0.0, 0, 0, 0, 0, 0)
            try:
                cpu_before = flood_daphne_cpu(stack)
                started = time.monotonic()
                pings = asyncio.run(
                    loads.paced_pings(
                        address,
                        clients=plan.flood_measurers,
                        interval=PING_INTERVAL,
                        seconds=plan.flood_seconds,
                    )
                )
                elapsed = time.monotonic() - started
                cpu_after = flood_daphne_cpu(stack)
                try:
                    memory = stack.memory_bytes("asgi-flood") / 2**20
                except FileNotFoundError:  # restarting
                    memory = math.nan
            finally:
                if flooder:
                    found = flooder_stop(flooder)
            busy_after = daphne_quiet(stack)
            # Killed for memory (its limit, docker-compose.yml's) and restarted
            # by Docker: every socket on it dropped, the honest clients' too.
            restarts = flood_daphne(stack).attrs["RestartCount"] - restarts_before
            if restarts:
                progress(f"13: asgi-flood restarted {restarts} time(s) during the round")
            # A restarted container's CPU counts from 0 again: no share.
            daphne_seconds = (
                cpu_after - cpu_before
                if None not in (cpu_before, cpu_after) and not restarts
                else math.nan
            )
            return {
                **asdict(pings),
                "flood_frames_per_s": found.frames / found.seconds if found.seconds else 0.0,
                "flood_sockets_per_s": found.sockets / found.seconds if found.seconds else 0.0,
                "flood_closes_4008": found.closes_4008,
                "flood_other_closes": found.other_closes,
                "flood_replies_per_s": found.replies / found.seconds if found.seconds else 0.0,
                # Share of one core (asgi's limit is one CPU), while measured.
                "daphne_cpu_share": daphne_seconds / elapsed,
                "daphne_busy_after_s": busy_after,
                "daphne_memory_mib": memory,
                "daphne_restarts": restarts,
            }

        return alternate(plan, "13 flood", {"flood": True, "rest": False}, measure)
    finally:
        stack.stop("asgi-flood")


def echo_compare(stack: Stack, plan: Plan) -> dict:
    def measure(targets) -> dict:
        cpu_before = stack.cpu_seconds()
        result = asyncio.run(
            loads.echo(targets, clients=plan.echo_clients, seconds=plan.echo_seconds)
        )
        cpu = stack.cpu_seconds() - cpu_before
        return {
            "rate": result.rate,
            "p50_ms": result.p50_ms,
            "p99_ms": result.p99_ms,
            "cpu_s_per_1k": cpu / max(result.messages, 1) * 1000,
        }

    sides = {"through nginx": [("nginx", 8080)], "straight to Daphne": addresses("asgi", 8001)}
    return alternate(plan, "5 echo", sides, measure)


async def broadcast_compare(plan: Plan) -> dict:
    daphnes = addresses("asgi", 8001)
    room = loads.ChatRoomFanout(plan.broadcast_clients)
    raw = loads.RedisFanout(plan.broadcast_clients)
    await room.open(daphnes)
    # The stack's Redis requires the password the secrets service made.
    password = Path(os.environ["REDIS_PASSWORD_FILE"]).read_text().strip()
    await raw.open(os.environ["REDIS_URL"], password=password)
    try:
        await room.broadcast()  # warm up
        await raw.broadcast()
        samples = {"room": [], "raw Redis": []}
        for round_number in range(plan.rounds):
            pairs = [("room", room), ("raw Redis", raw)]
            for name, fanout in pairs if round_number % 2 == 0 else pairs[::-1]:
                for _ in range(plan.broadcasts_per_round):
                    samples[name].append(await fanout.broadcast())
                    await asyncio.sleep(0.05)
                progress(
                    f"6 broadcast round {round_number + 1}/{plan.rounds}: {name}: "
                    f"last of {plan.broadcast_clients} after "
                    f"{statistics.median(samples[name][-plan.broadcasts_per_round :]):.1f} ms "
                    "(median)"
                )
    finally:
        await room.close()
        await raw.close()
    sides = {
        name: {
            "p50_ms": loads.percentile(values, 50),
            "p99_ms": loads.percentile(values, 99),
            "samples_ms": values,
        }
        for name, values in samples.items()
    }
    return {
        "clients": plan.broadcast_clients,
        "daphne_processes": len(daphnes),
        "sides": sides,
        "ratios": {k: sides["room"][k] / sides["raw Redis"][k] for k in ("p50_ms", "p99_ms")},
    }


async def idle_hold(stack: Stack, plan: Plan) -> dict:
    memory_before = {s: stack.memory_bytes(s) for s in ("asgi", "nginx")}
    progress(f"7 idle: opening {plan.idle_connections} WebSockets through nginx")
    opened_at = time.monotonic()
    connections, failed = await loads.idle_open([("nginx", 8080)], plan.idle_connections)
    progress(
        f"7 idle: {len(connections)} open ({failed} failed) in "
        f"{time.monotonic() - opened_at:.0f} s; holding {plan.idle_hold_seconds:.0f} s"
    )
    await asyncio.sleep(min(5, plan.idle_hold_seconds))  # let the servers settle
    memory_after = {s: stack.memory_bytes(s) for s in ("asgi", "nginx")}
    deadline = time.monotonic() + plan.idle_hold_seconds
    while (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(10, left))
        still_open = sum(c.state is loads.State.OPEN for c in connections)
        progress(f"7 idle: {still_open} of {len(connections)} still open")
    result = await loads.idle_check(connections, plan.idle_connections)
    progress(f"7 idle: {result.held} held, {result.dropped} dropped; closing")
    await loads.ws_close_all(connections)
    per_connection = {
        service: (memory_after[service] - memory_before[service]) / max(len(connections), 1)
        for service in memory_before
    }
    return {
        **asdict(result),
        "hold_seconds": plan.idle_hold_seconds,
        "daphne_bytes_per_connection": per_connection["asgi"],
        "nginx_bytes_per_connection": per_connection["nginx"],
    }


def main() -> int:
    quick = os.environ.get("BENCH_QUICK") == "1"
    plan = QUICK if quick else FULL
    stack = Stack()
    progress(f"{'quick' if quick else 'full'} run against compose project {stack.project}")
    nginx = "http://nginx:8080"
    # BENCH_SCENARIOS=2,4 runs only those (to try a change quickly); the report
    # then shows the others' figures as missing, and the run fails only if a
    # figure of those asked for is.
    asked = os.environ.get("BENCH_SCENARIOS") or ",".join(report.SCENARIOS)
    only = {s.strip() for s in asked.split(",")}
    results: dict = {
        "quick": quick,
        "plan": asdict(plan),
        "scenarios": sorted(only),
        "machine": machine(stack),
    }

    # pg_stat_statements (bench/compose.yml) counting nothing: only scenario
    # 12 turns it on.
    pg_stat_track(stack, "none")

    def attempt(key: str, measure) -> None:
        """One scenario's figures; a scenario that fails is noted in the report,
        and the others still run and keep theirs."""
        try:
            results[key] = measure()
        except Exception as error:
            progress(f"{key} failed: {error!r}")
            results.setdefault("failed", {})[key] = repr(error)

    # First, before any load has warmed or tired anything.
    if "15" in only:
        progress(f"15: the stack at rest, {plan.rest_seconds:g} s")
        attempt("at_rest", lambda: at_rest(stack, plan))
    if only & {"1", "3"}:
        progress("1 and 3: the static file (the floor) and the public page, through nginx")
        sides = {
            "public page": f"{nginx}{PUBLIC_PAGE}",
            "static file": f"{nginx}{report.STATIC_FILE}",
        }
        attempt("public_vs_static", lambda: http_compare(stack, plan, "1+3", sides))
    if "2" in only:
        progress("2: the page through nginx and straight to Gunicorn")
        sides = {
            "through nginx": f"{nginx}{PAGE}",
            "straight to Gunicorn": f"http://web:8000{PAGE}",
        }
        attempt("proxy", lambda: http_compare(stack, plan, "2", sides))
    if "4" in only:
        progress("4: the page, this project's configuration and the common default")
        sides = {
            "this project": f"{nginx}{PAGE}",
            "common default": f"http://nginx-default:8080{PAGE}",
        }
        attempt("tuning", lambda: http_compare(stack, plan, "4", sides))
        progress(f"4: the page at {plan.mix_rate:g} req/s, open-loop: its tail on each side")
        attempt("tuning_paced", lambda: paced_compare(stack, plan, "4 paced", slow_every=0))
    if "9" in only:
        progress(
            f"9: the page at {plan.mix_rate:g} req/s, one request in {plan.mix_slow_every} "
            f"waiting {SLOW_PAGE}: this project and the common default"
        )
        attempt(
            "mix",
            lambda: paced_compare(stack, plan, "9 mix", slow_every=plan.mix_slow_every),
        )
    if "10" in only:
        progress("10: the page with logs and metrics as shipped, and with both off")
        attempt("observability", lambda: observability_compare(stack, plan))
    if "11" in only:
        progress("11: the page enqueuing one task and none (worker stopped: they pile up)")
        attempt("enqueue", lambda: enqueue_compare(stack, plan))
        progress(f"11: one worker: {plan.tasks_batch} tasks enqueued at once")
        attempt("worker_throughput", lambda: worker_throughput(stack, plan))
        progress(f"11: one worker: pickup delay at {plan.tasks_rate:g} tasks/s, open-loop")
        attempt("worker_pickup", lambda: worker_pickup(stack, plan))
    if "12" in only:
        progress("12: a returning visitor's page, session copies on and off")
        attempt("session_copies", lambda: session_copies_compare(stack, plan))
    if "13" in only:
        progress(
            f"13: {plan.flood_measurers} clients' round trips on one Daphne, one other client "
            f"flooding it on {plan.flood_lanes} sockets, and no flood"
        )
        attempt("flood", lambda: flood_compare(stack, plan))
    if "14" in only:
        progress("14: the page straight to Gunicorn, a pool of one connection a process, and none")
        attempt("pool", lambda: pool_compare(stack, plan))
    if os.environ.get("BENCH_PROFILE") == "1":
        progress("profile: the page under load, py-spy in Gunicorn, every container's CPU")
        attempt("profile", lambda: profile_compare(stack, plan))
    if "5" in only:
        progress("5: WebSocket echo through nginx and straight to Daphne")
        attempt("echo", lambda: echo_compare(stack, plan))
    if "6" in only:
        progress(f"6: broadcast to {plan.broadcast_clients} clients, and raw Redis fan-out")
        attempt("broadcast", lambda: asyncio.run(broadcast_compare(plan)))
    if "7" in only:
        attempt("idle", lambda: asyncio.run(idle_hold(stack, plan)))
    cold = [float(s) for s in os.environ.get("COLD_START_SECONDS", "").split()]
    results["machine"]["load_after"] = os.getloadavg()[0]
    results["cold_start"] = {"seconds": statistics.median(cold) if cold else None, "rounds": cold}

    written = report.write(results, "/results")
    progress("report: " + ", ".join(written))
    print(Path("/results/report.md").read_text())
    missing = report.missing_figures("/results", only)
    if missing:
        print("figures missing from the report: " + ", ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
