"""The secure configuration, checked on the running stack: response headers,
TLS, the containers' privileges, nginx's rendered configuration, and images
that hold no secret."""

import http.client
import io
import re
import socket
import ssl
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import redis
import requests
import trustme

from tests.stack import static_urls

pytestmark = pytest.mark.e2e

# Long-running services and what each must not be allowed.
# Every service of the stack: the long-running ones, the mail catcher of the
# test stack, and the one-shot ones, which have exited by now.
HARDENED_SERVICES = ["nginx", "web", "asgi", "worker", "redis", "db", "mail", "migrate", "secrets"]

# A whole PEM private key: the header, then its base64 body (a library's
# binary may hold the header text alone).
PEM_PRIVATE_KEY = re.compile(
    rb"-----BEGIN [A-Z ]*PRIVATE KEY-----\r?\n[A-Za-z0-9+/=\r\n]{64,}-----END"
)


def assert_security_headers(response):
    headers = response.headers
    csp = dict(
        directive.strip().split(" ", 1)
        for directive in headers["Content-Security-Policy"].split(";")
    )
    assert csp["script-src"] == "'self'"  # no 'unsafe-inline', no third parties
    assert csp["frame-ancestors"] == "'none'"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"  # once: Django's copy is dropped
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in headers["Permissions-Policy"]
    assert headers["Server"] == "nginx"  # no version


def test_pages_static_files_and_errors_carry_the_security_headers(stack):
    browser = stack.browser()
    page = browser.get(stack.url("/admin/login/"))
    assert_security_headers(page)
    css = next(url for url in static_urls(page.text) if url.endswith(".css"))
    assert_security_headers(browser.get(stack.url(css)))
    assert_security_headers(browser.get(stack.url("/no-such-page/")))
    too_big = browser.post(stack.url("/admin/login/"), data=b"x" * (2 * 1024 * 1024))
    assert too_big.status_code == 413
    assert_security_headers(too_big)


def test_no_hsts_over_plain_http(stack):
    response = stack.browser().get(stack.url("/admin/login/"))
    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.parametrize("service", HARDENED_SERVICES)
def test_containers_are_unprivileged_read_only_and_limited(stack, service):
    for container in stack.each(service, exited=True):
        config, host = container.attrs["Config"], container.attrs["HostConfig"]
        assert config["User"] not in ("", "root", "0"), "runs as root"
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"]
        assert "no-new-privileges:true" in host["SecurityOpt"]
        assert host["Memory"] > 0, "no memory limit"
        assert host["NanoCpus"] > 0, "no CPU limit"
        if container.status == "running":
            uid = container.exec_run("id -u").output.decode().strip()
            assert uid != "0"


def test_only_nginx_publishes_a_port(stack):
    published = {
        container.labels["com.docker.compose.service"]: set(bindings)
        for container in stack.docker.containers.list(
            filters={"label": f"com.docker.compose.project={stack.project}"}
        )
        if (bindings := container.attrs["HostConfig"]["PortBindings"] or {})
    }
    # Not nginx's health port, 8081, either.
    assert published == {"nginx": {"8080/tcp"}}


def test_rendered_nginx_configuration_passes_gixy(stack, tmp_path):
    # gixy reads the configuration as nginx does, includes and all: copy the
    # running container's (as rendered at start) to the same paths here.
    # (tar in the container: Docker's archive API cannot read its tmpfs.)
    nginx = stack.containers("nginx")[0]
    archive = nginx.exec_run(["tar", "-C", "/", "-cf", "-", "etc/nginx", "tmp/conf.d"]).output
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall("/", filter="data")
    # Every check but one: worker_rlimit_nofile_vs_connections wants twice as
    # many descriptors as worker_connections, counting an upstream socket per
    # connection; but nginx counts upstream sockets as connections already
    # (a proxied WebSocket is two connections, two descriptors), so the rule
    # would halve the WebSockets a worker holds (nginx/20-processes.envsh).
    result = subprocess.run(
        ["gixy", "--skips", "worker_rlimit_nofile_vs_connections", "/etc/nginx/nginx.conf"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "default.conf" in result.stdout or "No issues found" in result.stdout


def is_library_test_fixture(path: str, content: bytes) -> bool:
    """A library's own test keys: an installed package's tests (autobahn ships
    some), or a compiled library's self-test (GnuTLS has one)."""
    parts = Path(path).parts
    in_package_tests = "site-packages" in parts and bool({"test", "tests"} & set(parts))
    return in_package_tests or content.startswith(b"\x7fELF")


def test_images_hold_no_secret(stack):
    """Nothing secret in any layer or in the image's configuration: not the
    stack's own secrets (made at first start, kept in a volume), not a .env
    file, not a private key, not a secret passed as a build variable."""
    real_secrets = [
        Path(path).read_bytes().strip()
        for path in (
            "/secrets/django_secret_key",
            "/secrets/postgres_password",
            "/postgres-superuser/password",
        )
    ]
    for service in ("web", "nginx"):
        image = stack.containers(service)[0].image
        history = " ".join(str(step.get("CreatedBy", "")) for step in image.history())
        env = " ".join(image.attrs["Config"]["Env"] or [])
        for text in (history, env):
            assert "SECRET_KEY=" not in text and "PASSWORD=" not in text

        with tarfile.open(fileobj=io.BytesIO(b"".join(image.save())), mode="r") as saved:
            for member in saved.getmembers():
                blob = saved.extractfile(member)
                if blob is None:
                    continue
                try:
                    layer = tarfile.open(fileobj=io.BytesIO(blob.read()))  # noqa: SIM115
                except tarfile.ReadError:
                    continue  # a configuration or manifest, not a layer
                for entry in layer.getmembers():
                    assert Path(entry.name).name != ".env", f"{service}: {entry.name}"
                    if not entry.isfile() or entry.size > 50_000_000:
                        continue
                    content = layer.extractfile(entry).read()
                    if not is_library_test_fixture(entry.name, content):
                        assert not PEM_PRIVATE_KEY.search(content), (
                            f"{service}: key in {entry.name}"
                        )
                    for secret in real_secrets:
                        assert secret not in content, f"{service}: secret in {entry.name}"


# --- TLS ----------------------------------------------------------------------

# Mozilla's intermediate TLS 1.2 suites for an ECDSA certificate (trustme
# makes ECDSA ones); with an RSA certificate, the ECDHE-RSA twins.
MOZILLA_INTERMEDIATE_TLS12_ECDSA = {
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
}


@pytest.fixture(scope="module")
def tls_nginx(stack):
    """A second nginx from the stack's own image, given a certificate the test
    makes (as docker-compose.tls.yml would mount one), in front of the same
    web and asgi. Yields (address, CA)."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    bundle = io.BytesIO()
    with tarfile.open(fileobj=bundle, mode="w") as tar:
        for name, blob in (
            ("tls/fullchain.pem", cert.cert_chain_pems[0].bytes()),
            ("tls/privkey.pem", cert.private_key_pem.bytes()),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(blob), 0o644
            tar.addfile(info, io.BytesIO(blob))

    stack_nginx = stack.containers("nginx")[0]
    network = next(iter(stack_nginx.attrs["NetworkSettings"]["Networks"]))
    container = stack.docker.containers.create(
        stack_nginx.image,
        environment={"DJANGO_ALLOWED_HOSTS": "localhost", "HTTPS_PORT": "8443"},
        network=network,
        cap_drop=["ALL"],
    )
    try:
        container.put_archive("/etc/nginx", bundle.getvalue())
        container.start()
        container.reload()
        address = container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection((address, 8443), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(container.logs().decode()) from None
                time.sleep(0.2)
        yield address, ca
    finally:
        container.remove(force=True)


def handshake(address, ca, *, version, ciphers=None, server_name="localhost"):
    """The negotiated (protocol, cipher), or the ssl.SSLError."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(context)
    context.minimum_version = context.maximum_version = version
    if ciphers:
        context.set_ciphers(ciphers)
    with (
        socket.create_connection((address, 8443), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        return tls.version(), tls.cipher()[0]


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_tls_1_3_and_1_2_only(tls_nginx):
    address, ca = tls_nginx
    assert handshake(address, ca, version=ssl.TLSVersion.TLSv1_3)[0] == "TLSv1.3"
    assert handshake(address, ca, version=ssl.TLSVersion.TLSv1_2)[0] == "TLSv1.2"
    for old in (ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1):
        with pytest.raises(ssl.SSLError):
            handshake(address, ca, version=old, ciphers="ALL:@SECLEVEL=0")


def test_tls_1_2_ciphers_are_mozillas_intermediate(tls_nginx):
    address, ca = tls_nginx
    offered = {
        c["name"]
        for c in ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).get_ciphers()
        if c["protocol"] == "TLSv1.2"
    } | {"AES128-SHA", "AES256-SHA", "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384"}
    accepted = set()
    for cipher in sorted(offered):
        try:
            handshake(address, ca, version=ssl.TLSVersion.TLSv1_2, ciphers=f"{cipher}:@SECLEVEL=0")
        except (ssl.SSLError, OSError):
            continue
        accepted.add(cipher)
    assert accepted == MOZILLA_INTERMEDIATE_TLS12_ECDSA


def test_unknown_server_name_gets_no_handshake(tls_nginx):
    address, ca = tls_nginx
    with pytest.raises(ssl.SSLError):
        handshake(address, ca, version=ssl.TLSVersion.TLSv1_3, server_name="evil.example")


def https_get(address, ca, path):
    """GET over TLS to the container's address, as https://localhost:8443."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    connection = http.client.HTTPSConnection("localhost", 8443, context=context, timeout=5)
    connection.sock = context.wrap_socket(
        socket.create_connection((address, 8443), timeout=5), server_hostname="localhost"
    )
    connection.request("GET", path, headers={"Host": "localhost:8443"})
    return connection.getresponse()


def test_https_serves_the_site_with_hsts_and_http_redirects_to_it(tls_nginx):
    address, ca = tls_nginx
    response = https_get(address, ca, "/healthz")
    assert response.status == 200
    # HSTS_MAX_AGE's and HSTS_PRELOAD's defaults: a year, no preload.
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert_security_headers(response)

    plain = requests.get(
        f"http://{address}:8080/admin/?x=1",
        headers={"Host": "localhost:8080"},
        allow_redirects=False,
        timeout=5,
    )
    assert plain.status_code == 308
    assert plain.headers["Location"] == "https://localhost:8443/admin/?x=1"


# A certificate folder nginx cannot use: (path, link target or None, mode) of
# what is in it, and the reason nginx must give for refusing to start.
UNUSABLE_CERTIFICATE_FOLDERS = {
    # certbot's live/<name>/ mounted alone: links into an archive/ that is not there.
    "live-folder-alone": (
        [
            ("tls/fullchain.pem", "../../archive/localhost/fullchain1.pem", 0o777),
            ("tls/privkey.pem", "../../archive/localhost/privkey1.pem", 0o777),
        ],
        "the TLS certificate /etc/nginx/tls/fullchain.pem: it is a symbolic link to "
        "../../archive/localhost/fullchain1.pem, which is not in the container.",
    ),
    # certbot's own mode for keys: root's alone.
    "key-root-s-alone": (
        [("tls/fullchain.pem", None, 0o644), ("tls/privkey.pem", None, 0o600)],
        "the TLS certificate's key /etc/nginx/tls/privkey.pem: Permission denied",
    ),
    # TLS_CERT_DIR names a folder that does not exist: Docker mounts an empty one.
    "empty-folder": ([], "the TLS certificate /etc/nginx/tls/fullchain.pem: no such file"),
}


@pytest.mark.parametrize("case", UNUSABLE_CERTIFICATE_FOLDERS)
def test_nginx_refuses_to_start_when_it_cannot_read_its_certificate(stack, case):
    """Rather than serve plain HTTP alone, with HTTPS asked for."""
    entries, reason = UNUSABLE_CERTIFICATE_FOLDERS[case]
    # From the root: Docker refuses a link out of the folder it extracts into.
    bundle = io.BytesIO()
    with tarfile.open(fileobj=bundle, mode="w") as tar:
        folder = tarfile.TarInfo("etc/nginx/tls")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        for name, target, mode in entries:
            info = tarfile.TarInfo(f"etc/nginx/{name}")
            info.mode = mode
            if target:
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
            else:
                info.size = 4
                tar.addfile(info, io.BytesIO(b"PEM\n"))
    # On the stack's network, where nginx finds web and would otherwise start.
    stack_nginx = stack.containers("nginx")[0]
    container = stack.docker.containers.create(
        stack_nginx.image,
        environment={"DJANGO_ALLOWED_HOSTS": "localhost", "HTTPS_PORT": "8443"},
        network=next(iter(stack_nginx.attrs["NetworkSettings"]["Networks"])),
        cap_drop=["ALL"],
    )
    try:
        container.put_archive("/", bundle.getvalue())
        container.start()
        deadline = time.monotonic() + 30
        while container.status != "exited":
            assert time.monotonic() < deadline, "nginx started: " + container.logs().decode()
            time.sleep(0.2)
            container.reload()
        log = container.logs().decode(errors="replace")
        assert container.attrs["State"]["ExitCode"] != 0, log
        assert f"nginx: cannot read {reason}" in log
    finally:
        container.remove(force=True)


def test_redis_refuses_commands_without_the_password(stack):
    # Anything else on the stack's network reaches redis:6379 as this container
    # does. A plain PING in Redis's inline protocol, as any client would start.
    with socket.create_connection(("redis", 6379), timeout=5) as connection:
        connection.sendall(b"PING\r\n")
        assert connection.recv(100).startswith(b"-NOAUTH ")
    password = Path("/secrets/redis_password").read_text()
    assert redis.Redis(host="redis", port=6379, password=password, socket_timeout=5).ping()
    # And the password is not in what `docker inspect` shows (command, environment).
    for service in ["redis", "web", "asgi"]:
        for container in stack.each(service):
            assert password not in str(container.attrs["Config"]), service


# bash's /dev/tcp: the nginx image has no nc or python. Fails when the name
# does not resolve, or the connection is refused or times out.
def tcp_connect(host: str, port: str) -> list[str]:
    return ["timeout", "3", "bash", "-c", 'exec 3<>"/dev/tcp/$0/$1"', host, port]


def test_nginx_cannot_reach_postgresql_or_redis(stack):
    # nginx is on the front network alone (docker-compose.yml): were it taken
    # over, the database and Redis would still be out of its reach.
    nginx = stack.containers("nginx")[0]
    for host, port in [("db", "5432"), ("redis", "6379")]:
        result = nginx.exec_run(tcp_connect(host, port))
        assert result.exit_code != 0, f"nginx reached {host}:{port}"
    # The same check connects where there is a way: nginx to web, web to both.
    assert nginx.exec_run(tcp_connect("web", "8000")).exit_code == 0
    stack.run_python(
        stack.containers("web")[0],
        "import socket\n"
        "for address in [('db', 5432), ('redis', 6379)]:\n"
        "    socket.create_connection(address, timeout=3).close()",
    )


# What the app's own database connection may do, asked of PostgreSQL by the
# app itself (web's settings, web's credentials).
APP_DATABASE_ROLE = """
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute(
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls"
        " FROM pg_roles WHERE rolname = current_user"
    )
    print("role", *cursor.fetchone())
    cursor.execute(
        "SELECT pg_get_userbyid(datdba) = current_user FROM pg_database"
        " WHERE datname = current_database()"
    )
    print("owns-database", *cursor.fetchone())
    cursor.execute(
        "SELECT count(*), count(*) FILTER (WHERE tableowner <> current_user)"
        " FROM pg_tables WHERE schemaname = 'public'"
    )
    print("tables-and-not-owned", *cursor.fetchone())
"""


def test_the_app_connects_to_postgresql_as_the_owner_of_its_tables_not_a_superuser(stack):
    output = stack.manage("shell", "--command", APP_DATABASE_ROLE)
    answers = {line.split()[0]: line.split()[1:] for line in output.splitlines() if line}
    # Not superuser, and cannot make databases or roles, replicate, or bypass
    # row-level security: a compromised web process reaches its own data only.
    assert answers["role"] == ["False"] * 5
    # It owns its database and every table in it, so migrations still work.
    assert answers["owns-database"] == ["True"]
    tables, not_owned = answers["tables-and-not-owned"]
    assert int(tables) > 0 and not_owned == "0"


# What each running service can read of the stack's secrets
# (deploy/generate_secrets.py, docker-compose.yml): the files in every folder
# they are kept in. Each server its own: Redis never the database's password,
# the database never Redis's or the secret key, nginx nothing, and the app
# neither PostgreSQL's superuser's nor Redis's admin's.
SECRET_FOLDERS = ["/secrets", "/postgres-superuser", "/db-secrets", "/redis-secrets"]
APP_SECRETS = {"/secrets": {"django_secret_key", "postgres_password", "redis_password"}}
SECRETS_READ_BY = {
    "web": APP_SECRETS,
    "asgi": APP_SECRETS,
    "worker": APP_SECRETS,
    "nginx": {},
    "redis": {"/secrets": {"redis_password", "redis_admin_password"}},
    "db": {"/secrets": {"postgres_password"}, "/postgres-superuser": {"password"}},
}


SECRET_NAMES = {"django_secret_key", "postgres_password", "redis_password", "redis_admin_password"}


@pytest.mark.parametrize("service", SECRETS_READ_BY)
def test_each_service_reads_its_own_secrets_alone(stack, service):
    # Every name in every folder, as the service's own user: the folders
    # cannot be listed by the servers' users (deploy/Dockerfile), only read
    # by name.
    for container in stack.each(service):
        readable = {}
        for folder in SECRET_FOLDERS:
            for name in SECRET_NAMES | {"password"}:
                if container.exec_run(["cat", f"{folder}/{name}"]).exit_code == 0:
                    readable.setdefault(folder, set()).add(name)
        assert readable == SECRETS_READ_BY[service]


# Commands of each kind the app's Redis user may not run: scripts, and what
# Redis calls dangerous (none that would harm the stack were it allowed).
REFUSED_TO_THE_APP = [
    ["EVAL", "return 1", "0"],
    ["FUNCTION", "LIST"],
    ["CONFIG", "GET", "dir"],
    ["KEYS", "*"],
    ["ACL", "LIST"],
    ["MODULE", "LIST"],
    ["CLIENT", "LIST"],
]


def test_the_apps_redis_user_runs_no_script_nor_dangerous_command(stack):
    password = Path("/secrets/redis_password").read_text()
    # A database of its own: FLUSHDB below empties it alone.
    app = redis.Redis(host="redis", port=6379, password=password, db=9, socket_timeout=5)
    for command in REFUSED_TO_THE_APP:
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.execute_command(*command)
    # What the app does use still works: keys, pub/sub, and FLUSHDB (the
    # session copies are dropped all at once with it).
    app.set("probe", "1")
    assert app.publish("probe", "1") == 0
    assert app.flushdb() and app.get("probe") is None
    # The admin user, for an operator at the server, may do anything.
    (server,) = stack.each("redis")
    admin = server.exec_run(
        [
            "sh",
            "-c",
            "REDISCLI_AUTH=$(cat /secrets/redis_admin_password)"
            " redis-cli --user admin CONFIG GET maxmemory-policy",
        ]
    )
    assert admin.output.split() == [b"maxmemory-policy", b"volatile-lru"], admin.output
