"""How long each process is given to stop, in Compose: each step of a stop
fits in the time Docker gives it before SIGKILL, so that no request or task
in hand is cut off. Every number is read from the file that sets it; the
Kubernetes manifests' are held to these in tests/kubernetes/test_invariants.py
(test_the_drain_timings_add_up, test_the_worker_finishes_its_task_before_the_kubelet_kills_it).
docs/operating.md ("Ports and shutdown timing") lists them. No stack needed."""

import re

import yaml

from project.env import BASE_DIR

SERVICES = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())["services"]


def setting(path: str, pattern: str) -> int:
    """The one number `pattern` (its group 1) finds in `path`."""
    found = re.findall(pattern, (BASE_DIR / path).read_text(), re.MULTILINE)
    assert len(found) == 1, f"{path}: {pattern} found {found}"
    return int(found[0])


def stop_grace_period(service: str) -> int:
    """How long Docker waits after the stop signal before SIGKILL, in seconds."""
    return int(re.fullmatch(r"(\d+)s", SERVICES[service]["stop_grace_period"])[1])


# The drain (deploy/run-draining.sh): web's, unless a start script sets its own.
DRAIN_SECONDS = setting("deploy/run-draining.sh", r"DRAIN_SECONDS:-(\d+)")
ASGI_DRAIN_SECONDS = setting("deploy/start-asgi.sh", r"^export DRAIN_SECONDS=(\d+)")
# Gunicorn (deploy/gunicorn.conf.py): a request's longest, and the time
# requests in flight get once it is told to stop.
GUNICORN_TIMEOUT = setting("deploy/gunicorn.conf.py", r"^timeout = (\d+)$")
GRACEFUL_TIMEOUT = setting("deploy/gunicorn.conf.py", r"^graceful_timeout = (\d+)$")
# nginx: how long its old workers may finish what they have (nginx/nginx.conf).
WORKER_SHUTDOWN_TIMEOUT = setting("nginx/nginx.conf", r"^worker_shutdown_timeout (\d+)s;$")
# The follower of web's replicas (nginx/40-follow-web.sh): the pause between
# rounds, and its two lookups' timeouts; nginx's health check
# (nginx/healthcheck.sh) wants a heartbeat younger than MAX_AGE.
FOLLOWER_INTERVAL = setting("nginx/40-follow-web.sh", r"^INTERVAL=(\d+)$")
FOLLOWER_LOOKUP = setting("nginx/40-follow-web.sh", r"timeout (\d+) getent")
FOLLOWER_ASK = setting("nginx/40-follow-web.sh", r"timeout (\d+) wget")
HEARTBEAT_MAX_AGE = setting("nginx/healthcheck.sh", r"^MAX_AGE=(\d+)$")
TASK_TIME_LIMIT = setting("project/settings/base.py", r"^TASK_TIME_LIMIT_SECONDS = (\d+)$")


def test_web_drains_and_finishes_its_requests_before_docker_kills_it():
    # Readiness fails for DRAIN_SECONDS, then Gunicorn gets graceful_timeout.
    assert stop_grace_period("web") > DRAIN_SECONDS + GRACEFUL_TIMEOUT


def test_asgi_drains_before_docker_kills_it():
    # Its sockets are told to reconnect at the start of the drain; Daphne
    # stops at its end, with most of the grace period left for it.
    assert stop_grace_period("asgi") / 2 > ASGI_DRAIN_SECONDS


def test_nginx_waits_for_the_slowest_request_before_docker_kills_it():
    # nginx stops gracefully (SIGQUIT, the image's stop signal), its workers
    # finishing what they proxy for up to worker_shutdown_timeout: no less
    # than Gunicorn's longest request, and within Docker's patience.
    assert GUNICORN_TIMEOUT <= WORKER_SHUTDOWN_TIMEOUT < stop_grace_period("nginx")


def test_the_worker_finishes_its_task_before_docker_kills_it():
    assert stop_grace_period("worker") > TASK_TIME_LIMIT


def test_nginx_s_follower_sees_a_drain_before_it_ends():
    # A replica answers 503 from its drain's start; the follower's next round
    # (after at most a pause, and then its lookups) takes it out of nginx.
    assert FOLLOWER_INTERVAL + FOLLOWER_ASK < DRAIN_SECONDS


def test_a_follower_that_runs_is_never_taken_for_stopped():
    # A round: a pause, the name's lookup, then every replica asked at once.
    assert FOLLOWER_INTERVAL + FOLLOWER_LOOKUP + FOLLOWER_ASK < HEARTBEAT_MAX_AGE
