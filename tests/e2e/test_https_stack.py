"""HTTPS as one state: with COMPOSE_FILE in .env naming docker-compose.tls.yml,
`docker compose up --wait` brings the stack up healthy behind TLS, from a
certificate in certbot's folder as docs/configuration.md says to mount it, and
the docs' other commands (deploy/rolling-restart.sh) keep it so, with no -f
flag repeated. Slow (a second stack of its own), so `make chaos` runs it."""

import os
import random
import shutil
import socket
import ssl
import subprocess

import docker
import pytest
import requests
import trustme

from tests.stack import project_copy

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]


def compose(folder, *args: str) -> subprocess.CompletedProcess:
    """`docker compose ...` in the copy, as a person would type it there."""
    return subprocess.run(
        ["docker", "compose", *args], cwd=folder, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def https_stack():
    folder = project_copy()
    ca = trustme.CA()
    certificate = ca.issue_cert("localhost")
    # certbot's folder: live/localhost/*.pem are relative links into
    # archive/localhost/, where each renewal adds a numbered file.
    letsencrypt = folder / "letsencrypt"
    archive, live = letsencrypt / "archive" / "localhost", letsencrypt / "live" / "localhost"
    archive.mkdir(parents=True)
    live.mkdir(parents=True)
    certificate.cert_chain_pems[0].write_to_path(archive / "fullchain1.pem")
    certificate.private_key_pem.write_to_path(archive / "privkey1.pem")
    for name in ("fullchain", "privkey"):
        (live / f"{name}.pem").symlink_to(f"../../archive/localhost/{name}1.pem")
    for path in letsencrypt.rglob("*"):
        os.chown(path, folder.stat().st_uid, folder.stat().st_gid, follow_symlinks=False)
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)  # nginx's user reads them
    # What docs/configuration.md says to put in .env to turn HTTPS on. The
    # ports are the host's: HTTP on any free one, HTTPS on one unlikely to be
    # taken.
    (folder / ".env").write_text(
        "COMPOSE_FILE=docker-compose.yml:docker-compose.tls.yml\n"
        f"TLS_CERT_DIR={letsencrypt}\n"
        "TLS_CERT_NAME=localhost\n"
        f"HTTPS_PORT={random.randint(40000, 49999)}\n"
        "HTTP_PORT=127.0.0.1:0\n"
    )
    client = docker.from_env(version="auto")
    network = None
    try:
        started = compose(folder, "up", "--detach", "--wait", "--quiet-pull")
        assert started.returncode == 0, started.stdout + started.stderr
        # nginx's network (docker-compose.yml): all these tests reach.
        network = client.networks.get(f"{folder.name}_front")
        network.connect(client.containers.get(socket.gethostname()))
        yield folder, ca, network
    finally:
        if network is not None:
            network.disconnect(socket.gethostname(), force=True)
        # --rmi local: the images built for this copy alone.
        compose(folder, "down", "--volumes", "--rmi", "local", "--timeout", "5")
        shutil.rmtree(folder)


def containers(folder, service: str) -> list:
    return docker.from_env(version="auto").containers.list(
        filters={
            "label": [
                f"com.docker.compose.project={folder.name}",
                f"com.docker.compose.service={service}",
            ]
        }
    )


def https_status(address: str, ca, path: str) -> int:
    """GET over TLS to nginx's address, as https://localhost."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with (
        socket.create_connection((address, 8443), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        return int(tls.recv(4096).split(b" ", 2)[1])


def test_https_stack_comes_up_healthy_and_stays_https_through_a_rolling_restart(https_stack):
    folder, ca, network = https_stack
    [nginx] = containers(folder, "nginx")
    assert nginx.attrs["State"]["Health"]["Status"] == "healthy"  # `up --wait` passed too
    # What nginx serves comes through certbot's link, which resolves in the
    # container because its whole folder is mounted.
    link = nginx.exec_run(["readlink", "/etc/nginx/tls/live/localhost/fullchain.pem"])
    assert link.output.decode().strip() == "../../archive/localhost/fullchain1.pem"
    address = nginx.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
    assert https_status(address, ca, "/readyz") == 200
    plain = requests.get(
        f"http://{address}:8080/admin/", headers={"Host": "localhost"}, allow_redirects=False,
        timeout=5,
    )  # fmt: skip
    assert plain.status_code == 308

    old = {c.id for c in containers(folder, "web")}
    restart = subprocess.run(
        ["deploy/rolling-restart.sh", "web"], cwd=folder, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert restart.returncode == 0, restart.stdout + restart.stderr

    new = containers(folder, "web")
    assert new and not old & {c.id for c in new}
    for web in new:
        assert "DJANGO_HTTPS=on" in web.attrs["Config"]["Env"]
    assert https_status(address, ca, "/admin/login/") == 200
