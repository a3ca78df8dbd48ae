"""nginx/40-follow-web.sh, the follower of web's ready replicas, one round at a
time, with stand-ins for what it asks (no container needed): `getent` says
what `web` resolves to, `wget` how each replica answers /readyz, and `nginx`
whether a reload works. And nginx/healthcheck.sh, which fails when the
follower has stopped."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from project.env import BASE_DIR

FOLLOWER = BASE_DIR / "nginx" / "40-follow-web.sh"
HEALTHCHECK = BASE_DIR / "nginx" / "healthcheck.sh"

STUBS = {
    # `getent hosts web`: the lines of the file `dns`.
    "getent": 'cat "$STUBS/dns"\n',
    # `wget ... http://<address>:8000/readyz`: as the file readyz/<address>:8000
    # says (200, 503, slow; no file: connection refused), as GNU wget reports it.
    "wget": """\
for url; do :; done
echo "$url" >> "$STUBS/wget.log"
authority=${url#http://}
authority=${authority%%/*}
case $(cat "$STUBS/readyz/$authority" 2>/dev/null) in
    200) echo "  HTTP/1.1 200 OK" >&2; exit 0 ;;
    503) echo "  HTTP/1.1 503 Service Unavailable" >&2; echo "ERROR 503" >&2; exit 8 ;;
    slow) exec sleep 30 ;;
    *) echo "failed: Connection refused." >&2; exit 4 ;;
esac
""",
    # `nginx -t -q`, `nginx -s reload`: noted in nginx.log, with the servers
    # file nginx would load; they fail when the file nginx-t or nginx-s says so.
    "nginx": """\
servers=$(paste -s -d ' ' "$NGINX_ENVSUBST_OUTPUT_DIR/web-servers.inc")
echo "nginx $*: $servers" >> "$STUBS/nginx.log"
case $1 in
    -t) exit "$(cat "$STUBS/nginx-t" 2>/dev/null || echo 0)" ;;
    -s) exit "$(cat "$STUBS/nginx-s" 2>/dev/null || echo 0)" ;;
esac
""",
}


class Web:
    """What the follower sees of web, and what it did."""

    def __init__(self, root: Path):
        self.root = root
        self.stubs = root / "stubs"
        (self.stubs / "readyz").mkdir(parents=True)
        (self.stubs / "dns").write_text("")
        bin_dir = root / "bin"
        bin_dir.mkdir()
        for name, body in STUBS.items():
            (bin_dir / name).write_text("#!/bin/sh\n" + body)
            (bin_dir / name).chmod(0o755)
        self.conf = root / "conf.d"
        self.conf.mkdir()
        self.state = root / "follow-web"
        self.env = {
            "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "STUBS": str(self.stubs),
            "NGINX_ENVSUBST_OUTPUT_DIR": str(self.conf),
            "FOLLOW_WEB_DIR": str(self.state),
        }

    def replicas(self, **answers: str) -> None:
        """web's addresses and their answers to /readyz: address="200", ..."""
        (self.stubs / "dns").write_text("".join(f"{address} web\n" for address in answers))
        for old in (self.stubs / "readyz").iterdir():
            old.unlink()
        for address, answer in answers.items():
            authority = f"[{address}]:8000" if ":" in address else f"{address}:8000"
            (self.stubs / "readyz" / authority).write_text(answer)

    def reload_fails(self, step: str | None) -> None:
        """Make `nginx -t` ("t") or `nginx -s reload` ("s") fail, or neither (None)."""
        for name in ("t", "s"):
            (self.stubs / f"nginx-{name}").write_text("1" if name == step else "0")

    def round(self) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["sh", str(FOLLOWER), "round"], env=self.env, capture_output=True, text=True, timeout=30
        )

    def servers(self) -> list[str]:
        return (self.conf / "web-servers.inc").read_text().splitlines()

    def reloads(self) -> list[str]:
        log = self.stubs / "nginx.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [line for line in lines if line.startswith("nginx -s reload")]


@pytest.fixture
def web(tmp_path) -> Web:
    return Web(tmp_path)


def test_the_first_round_lists_the_ready_replicas_without_a_reload(web):
    # Before nginx starts: there is nothing to reload, and nothing to agree with.
    web.replicas(**{"10.0.0.1": "200", "10.0.0.2": "200", "10.0.0.3": "503"})
    assert web.round().returncode == 0
    assert web.servers() == ["server 10.0.0.1:8000;", "server 10.0.0.2:8000;"]
    assert web.reloads() == []


def test_a_new_replica_joins_when_two_rounds_agree(web):
    web.replicas(**{"10.0.0.1": "200"})
    web.round()
    web.replicas(**{"10.0.0.1": "200", "10.0.0.2": "200"})
    web.round()
    assert web.servers() == ["server 10.0.0.1:8000;"]  # one round says so: not yet
    assert web.reloads() == []
    web.round()
    assert web.servers() == ["server 10.0.0.1:8000;", "server 10.0.0.2:8000;"]
    assert len(web.reloads()) == 1


def test_a_slow_readyz_neither_drops_a_replica_at_once_nor_stalls_the_round(web):
    everyone = {f"10.0.0.{n}": "200" for n in range(1, 5)}
    web.replicas(**everyone)
    web.round()
    listed = [f"server 10.0.0.{n}:8000;" for n in range(1, 5)]
    # Three replicas answer nothing (the stand-in would take 30 s): they are
    # asked at once, so the round takes one 2 s timeout, not three.
    web.replicas(**{**everyone, "10.0.0.2": "slow", "10.0.0.3": "slow", "10.0.0.4": "slow"})
    started = time.monotonic()
    web.round()
    took = time.monotonic() - started
    # Asked one after another, they would take three timeouts at the least;
    # asked at once, one and the round's own work, with room for a loaded
    # machine.
    readyz_timeout = 2  # nginx/40-follow-web.sh: `timeout 2 wget ... /readyz`
    assert took < 3 * readyz_timeout - 0.5, f"a round with three slow replicas took {took:.1f} s"
    assert web.servers() == listed
    # Ready again: they never left.
    web.replicas(**everyone)
    web.round()
    assert web.servers() == listed
    assert web.reloads() == []
    # No answer two rounds running: it leaves.
    web.replicas(**{**everyone, "10.0.0.2": "silent"})
    web.round()
    assert web.servers() == listed
    web.round()
    assert web.servers() == [listed[0], *listed[2:]]
    assert len(web.reloads()) == 1


def test_a_draining_replica_leaves_at_once(web):
    # It answers 503 from the start of its drain and stops 5 s later:
    # waiting for a second round could leave nginx sending it requests.
    web.replicas(**{"10.0.0.1": "200", "10.0.0.2": "200"})
    web.round()
    web.replicas(**{"10.0.0.1": "200", "10.0.0.2": "503"})
    web.round()
    assert web.servers() == ["server 10.0.0.1:8000;"]
    assert len(web.reloads()) == 1


def test_no_replica_ready_keeps_them_all(web):
    web.replicas(**{"10.0.0.1": "200", "10.0.0.2": "200"})
    web.round()
    web.replicas(**{"10.0.0.1": "503", "10.0.0.2": "503"})  # PostgreSQL down, say
    web.round()
    web.round()
    assert web.servers() == ["server 10.0.0.1:8000;", "server 10.0.0.2:8000;"]
    assert web.reloads() == []


def test_ipv6_addresses_are_bracketed(web):
    web.replicas(**{"fd00::5": "200", "10.0.0.1": "200"})
    web.round()
    assert web.servers() == ["server 10.0.0.1:8000;", "server [fd00::5]:8000;"]
    asked = (web.stubs / "wget.log").read_text().splitlines()
    assert sorted(asked) == ["http://10.0.0.1:8000/readyz", "http://[fd00::5]:8000/readyz"]


@pytest.mark.parametrize("step", ["t", "s"], ids=["nginx-t-fails", "reload-signal-fails"])
def test_a_failed_reload_keeps_nginx_s_list_and_is_tried_again(web, step):
    web.replicas(**{"10.0.0.1": "200"})
    web.round()
    web.replicas(**{"10.0.0.1": "200", "10.0.0.2": "200"})
    web.round()
    web.reload_fails(step)
    failed = web.round()
    assert failed.returncode != 0
    assert "did not reload" in failed.stderr
    # The file is nginx's list again, as nginx still has it.
    assert web.servers() == ["server 10.0.0.1:8000;"]

    web.reload_fails(None)
    assert web.round().returncode == 0
    assert web.servers() == ["server 10.0.0.1:8000;", "server 10.0.0.2:8000;"]
    assert web.reloads()[-1] == "nginx -s reload: server 10.0.0.1:8000; server 10.0.0.2:8000;"


def heartbeat_time(web: Web) -> float:
    heartbeat = web.state / "heartbeat"
    return heartbeat.stat().st_mtime if heartbeat.exists() else 0.0


def reload_time(web: Web) -> float:
    return (web.stubs / "nginx.log").stat().st_mtime


def test_the_loop_goes_on_after_a_failed_reload(web):
    """The loop as the entrypoint starts it, with every reload failing."""
    web.replicas(**{"10.0.0.1": "200"})
    web.round()
    web.replicas(**{"10.0.0.1": "200", "10.0.0.2": "200"})
    web.reload_fails("s")
    loop = subprocess.Popen(
        ["sh", str(FOLLOWER), "loop"], env=web.env, stderr=subprocess.PIPE, text=True
    )
    try:
        # Two failed reloads, each followed by a heartbeat: the loop lived through both.
        deadline = time.monotonic() + 20
        while len(web.reloads()) < 2 or heartbeat_time(web) < reload_time(web):
            assert loop.poll() is None, loop.stderr.read()
            assert time.monotonic() < deadline, "the loop made no second reload attempt"
            time.sleep(0.1)
        assert web.servers() == ["server 10.0.0.1:8000;"]
    finally:
        loop.send_signal(signal.SIGTERM)
        loop.communicate(timeout=10)


# --- nginx/healthcheck.sh ---------------------------------------------------------


def healthcheck(web: Web, *, nginx_answers: bool = True) -> subprocess.CompletedProcess:
    # wget here is nginx's own health port: the stand-in answers 200 when the
    # file for 127.0.0.1:8081 says so.
    (web.stubs / "readyz" / "127.0.0.1:8081").write_text("200" if nginx_answers else "")
    return subprocess.run(
        ["sh", str(HEALTHCHECK)], env=web.env, capture_output=True, text=True, timeout=30
    )


def test_healthcheck_wants_nginx_and_a_fresh_heartbeat_from_the_follower(web):
    assert healthcheck(web).returncode == 1  # the follower never ran
    web.replicas(**{"10.0.0.1": "200"})
    web.state.mkdir()
    (web.state / "heartbeat").touch()
    assert healthcheck(web).returncode == 0
    assert healthcheck(web, nginx_answers=False).returncode != 0

    stale = time.time() - 11
    os.utime(web.state / "heartbeat", (stale, stale))
    result = healthcheck(web)
    assert result.returncode == 1
    assert "the follower of web's replicas (40-follow-web.sh) last ran" in result.stderr
