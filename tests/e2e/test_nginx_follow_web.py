"""The follower of web's replicas (nginx/40-follow-web.sh) in the stack's
nginx: if it stops, nginx's health check fails (nginx/healthcheck.sh).
tests/test_nginx_follow_web.py tests its rounds one by one."""

import time

import pytest

pytestmark = pytest.mark.e2e

# The follower's heartbeat may be 10 s old (nginx/healthcheck.sh); its last
# round may have touched it just before it stopped.
HEARTBEAT_MAX_AGE = 10


def healthcheck(container):
    """The container's own health check command, run now (not at Docker's interval)."""
    test = container.attrs["Config"]["Healthcheck"]["Test"]
    assert test[0] == "CMD", test
    return container.exec_run(test[1:])


def test_nginx_is_unhealthy_when_its_follower_of_web_stops(stack):
    [nginx] = stack.containers("nginx")
    assert healthcheck(nginx).exit_code == 0
    try:
        killed = nginx.exec_run(["sh", "-c", 'kill "$(cat /tmp/follow-web/pid)"'])
        assert killed.exit_code == 0, killed.output.decode()
        deadline = time.monotonic() + HEARTBEAT_MAX_AGE + 10
        while (result := healthcheck(nginx)).exit_code == 0:
            assert time.monotonic() < deadline, "nginx stayed healthy without its follower"
            time.sleep(0.5)
        assert (
            "the follower of web's replicas (40-follow-web.sh) last ran" in result.output.decode()
        )
    finally:
        # As found: a new container process starts nginx and its follower
        # afresh. (nginx logged the follower's end as an [alert]: "unknown
        # process ... exited on signal 15".)
        stack.restart("nginx")
        [nginx] = stack.containers("nginx")
        deadline = time.monotonic() + 30
        while healthcheck(nginx).exit_code != 0:
            assert time.monotonic() < deadline, "nginx was not healthy again after a restart"
            time.sleep(0.5)
