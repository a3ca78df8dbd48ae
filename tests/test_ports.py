"""The ports: each defined in one file, and restated, where a file cannot
refer to another (nginx's configuration, shell, YAML), as the same number.

A port is defined where its server listens: Gunicorn's in
deploy/gunicorn.conf.py, Daphne's in deploy/start-asgi.sh, nginx's in its
templates; the stack's metrics port and published port in
docker-compose.yml. Every other file of the project that names one is read
here and held to it (the Kubernetes manifests, rendered, in
tests/kubernetes/test_invariants.py). A file that starts naming a port
fails test_no_other_file_names_a_port until it is added below. No stack
needed; docs/operating.md ("Ports and shutdown timing") lists them.
"""

import re
from functools import cache
from pathlib import Path

import pytest

from project.env import BASE_DIR
from tests.project_files import compose_file, project_files


def read(path: str) -> str:
    return (BASE_DIR / path).read_text()


def number(pattern: str, path: str) -> int:
    """The one port `pattern` finds in `path` (its group 1)."""
    found = re.findall(pattern, read(path), re.MULTILINE)
    assert len(found) == 1, f"{path}: {pattern} found {found}"
    return int(found[0])


def numbers(pattern: str, path: str) -> set[int]:
    """Every port `pattern` finds in `path`: at least one."""
    found = {int(port) for port in re.findall(pattern, read(path), re.MULTILINE)}
    assert found, f"{path}: nothing matches {pattern}"
    return found


@cache
def compose(name: str = "docker-compose.yml") -> dict:
    return compose_file(BASE_DIR / name)


@cache
def ports() -> dict[str, int]:
    """Each port, read from the one file that defines it."""
    stack = compose()["services"]
    return {
        # Gunicorn (web): where it binds.
        "web": number(r'^bind = "0\.0\.0\.0:(\d+)"$', "deploy/gunicorn.conf.py"),
        # Daphne (asgi): where it listens.
        "asgi": number(r"--port (\d+)", "deploy/start-asgi.sh"),
        # nginx, inside its container: the site, its health port and HTTPS.
        "nginx": number(r"^\s*listen (\d+) default_server;", "nginx/default.conf.template"),
        "nginx-health": number(
            r"^\s*listen (\d+);\s*access_log off;\s*location = /healthz",
            "nginx/default.conf.template",
        ),
        "nginx-https": number(r"^\s*listen (\d+) ssl default_server;", "nginx/https.conf.template"),
        # Prometheus metrics of web, asgi and the worker, as the stack sets it.
        "metrics": int(
            re.fullmatch(r"\$\{METRICS_PORT-(\d+)\}", stack["web"]["environment"]["METRICS_PORT"])[
                1
            ]
        ),
        # Where nginx is published on the host, unless HTTP_PORT says otherwise.
        "published": int(
            re.fullmatch(r"\$\{HTTP_PORT:-(\d+)\}:\d+", stack["nginx"]["ports"][0])[1]
        ),
    }


def port_of(name: str) -> int:
    return ports()[name]


def dockerfile_exposed(target: str) -> set[int]:
    """The ports a stage of deploy/Dockerfile EXPOSEs."""
    stages = re.split(r"^FROM ", read("deploy/Dockerfile"), flags=re.MULTILINE)
    (stage,) = (text for text in stages if re.match(rf"\S+ AS {target}$", text, re.MULTILINE))
    return {
        int(port)
        for line in re.findall(r"^EXPOSE (.*)$", stage, re.MULTILINE)
        for port in line.split()
    }


# --- Each port, everywhere it is restated ---------------------------------------------


def test_the_definitions_are_found():
    # Guards the patterns above: every port read, and no two servers' the same.
    servers = [port for name, port in ports().items() if name != "published"]
    assert len(set(servers)) == len(servers), ports()
    assert all(0 < port < 65536 for port in ports().values()), ports()


def test_web_s_port_is_gunicorn_s():
    web = port_of("web")
    # nginx's follower writes each replica's address with it (and the name
    # alone when it has none yet).
    assert numbers(r"(?:\]|\$1|server web):(\d+)", "nginx/40-follow-web.sh") == {web}
    assert compose()["services"]["web"]["healthcheck"]["test"][-1] == str(web)
    assert compose("docker-compose.dev.yml")["services"]["web"]["command"][-1] == f"0.0.0.0:{web}"
    # The benchmark's requests straight to the stack's web.
    assert numbers(r"\bweb:(\d+)", "bench/run.py") == {web}


def test_asgi_s_port_is_daphne_s():
    asgi = port_of("asgi")
    assert numbers(r"\$asgi_host:(\d+)", "nginx/snippets/site.conf") == {asgi}
    assert compose()["services"]["asgi"]["healthcheck"]["test"][-1] == str(asgi)
    assert compose("docker-compose.dev.yml")["services"]["asgi"]["command"][-1] == f"0.0.0.0:{asgi}"
    # Straight to the stack's Daphne replicas, and to scenario 13's.
    assert numbers(r'"asgi(?:-flood)?", (\d+)', "bench/run.py") == {asgi}


def test_the_django_image_exposes_web_s_and_asgi_s():
    assert dockerfile_exposed("runtime") == {port_of("web"), port_of("asgi")}


def test_nginx_s_ports_are_where_it_listens():
    nginx, health, https = port_of("nginx"), port_of("nginx-health"), port_of("nginx-https")
    assert numbers(r"^\s*listen (\d+)", "nginx/default.conf.template") == {nginx, health}
    assert numbers(r"^\s*listen (\d+)", "nginx/https.conf.template") == {https}
    assert dockerfile_exposed("nginx") == {nginx, health, https}
    assert numbers(r"127\.0\.0\.1:(\d+)/healthz", "nginx/healthcheck.sh") == {health}
    stack = compose()["services"]
    assert stack["nginx"]["ports"][0].endswith(f":{nginx}")
    assert stack["tests"]["environment"]["STACK_ADDRESS"] == f"nginx:{nginx}"
    assert compose("docker-compose.tls.yml")["services"]["nginx"]["ports"][0].endswith(f":{https}")
    assert numbers(r'(?:\bnginx:|\("nginx", )(\d+)', "bench/run.py") == {nginx}


def test_the_published_port_is_the_origin_the_tests_and_make_dev_use():
    published = port_of("published")
    assert compose()["services"]["tests"]["environment"]["STACK_ORIGIN"] == (
        f"http://localhost:{published}"
    )
    assert numbers(r"HTTP_PORT:-127\.0\.0\.1:(\d+)\}", "Makefile") == {published}


def test_the_metrics_port_is_the_stack_s_everywhere():
    metrics = port_of("metrics")
    assert numbers(r"^\s*port: (\d+)$", "deploy/prometheus/prometheus.yml") == {metrics}
    assert numbers(r"^METRICS_PORT=(\d+)$", "deploy/kubernetes/base/settings.env") == {metrics}


# --- No other file names a port ---------------------------------------------------------

# The files checked above, and those that hold the manifests (checked
# rendered, in tests/kubernetes/test_invariants.py), for each port.
CHECKED = {
    "web": {
        "deploy/gunicorn.conf.py",
        "nginx/40-follow-web.sh",
        "docker-compose.yml",
        "docker-compose.dev.yml",
        "deploy/Dockerfile",
        "bench/run.py",
        "deploy/kubernetes/base/web.yaml",
        "deploy/kubernetes/base/network-policies.yaml",
    },
    "asgi": {
        "deploy/start-asgi.sh",
        "nginx/snippets/site.conf",
        "docker-compose.yml",
        "docker-compose.dev.yml",
        "deploy/Dockerfile",
        "bench/run.py",
        "deploy/kubernetes/base/asgi.yaml",
        "deploy/kubernetes/base/network-policies.yaml",
    },
    "nginx": {
        "nginx/default.conf.template",
        "deploy/Dockerfile",
        "docker-compose.yml",
        "bench/run.py",
        "deploy/kubernetes/base/nginx.yaml",
        "deploy/kubernetes/base/network-policies.yaml",
        "deploy/kubernetes/overlays/production/nginx-from-ingress.yaml",
    },
    "nginx-health": {
        "nginx/default.conf.template",
        "nginx/healthcheck.sh",
        "deploy/Dockerfile",
        "deploy/kubernetes/base/nginx.yaml",
    },
    "nginx-https": {
        "nginx/https.conf.template",
        "nginx/default.conf.template",
        "deploy/Dockerfile",
        "docker-compose.tls.yml",
    },
    "metrics": {
        "docker-compose.yml",
        "deploy/prometheus/prometheus.yml",
        "deploy/kubernetes/base/settings.env",
        "deploy/kubernetes/base/web.yaml",
        "deploy/kubernetes/base/asgi.yaml",
        "deploy/kubernetes/base/worker.yaml",
        "deploy/kubernetes/components/monitoring/network-policies.yaml",
    },
    "published": {"docker-compose.yml", "Makefile"},
}
# Files that name a port in their comments alone, which no program reads; and
# the benchmark's "common default", a Gunicorn and an nginx of its own that
# happen to use the same numbers.
PROSE = {
    ".env.example",
    "deploy/healthcheck.sh",
    "project/settings/base.py",
    "project/settings/production.py",
    "nginx/10-site.envsh",
    "deploy/kubernetes/overlays/local/settings.env",
    "deploy/kubernetes/components/monitoring/pod-monitors.yaml",
    "deploy/kubernetes/components/monitoring/rules.yaml",
    "bench/compose.yml",
    "bench/nginx-default.conf.template",
}
# Not the project's configuration: what people read, and what tests send.
NOT_CONFIGURATION = re.compile(r"(^|/)(docs|tests|requirements|bench-results)/|\.md$")


def configuration_files() -> list[str]:
    return [
        name
        for name in (str(path.relative_to(BASE_DIR)) for path in project_files())
        if not NOT_CONFIGURATION.search(name)
    ]


def naming(port: int) -> set[str]:
    found = set()
    for name in configuration_files():
        path = Path(BASE_DIR / name)
        if not path.is_file():
            continue  # listed by git, deleted since
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue  # not text
        if re.search(rf"(?<![\w.]){port}(?![\w])", text):
            found.add(name)
    return found


@pytest.mark.parametrize("name", sorted(CHECKED))
def test_no_other_file_names_a_port(name):
    # The files checked for any port of the same number (web's and the
    # published one may be), and those that only mention it.
    same = [other for other in CHECKED if port_of(other) == port_of(name)]
    unknown = naming(port_of(name)) - set().union(*(CHECKED[other] for other in same)) - PROSE
    assert unknown == set(), (
        f"{sorted(unknown)} name {name}'s port {port_of(name)}: hold them to it here (CHECKED), "
        "or, if it is only in a comment, list them in PROSE"
    )
