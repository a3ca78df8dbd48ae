"""nginx/10-site.envsh, the values nginx's template is rendered with, as the
nginx image's entrypoint sources it (no container needed)."""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from apps.core.storage import MEDIA_DEFAULT_TYPE, MEDIA_TYPES
from project.env import BASE_DIR

ENVSH = BASE_DIR / "nginx" / "10-site.envsh"


def site_value(tmp_path, name: str, **env) -> subprocess.CompletedProcess:
    """Source 10-site.envsh as the entrypoint does, and print the variable `name`."""
    return subprocess.run(
        ["sh", "-c", f'. "{ENVSH}" && echo "${name}"'],
        env={
            "DJANGO_ALLOWED_HOSTS": "example.com",
            "NGINX_ENVSUBST_OUTPUT_DIR": str(tmp_path),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=30,
    )


def site_values(tmp_path, **env) -> subprocess.CompletedProcess:
    return site_value(tmp_path, "NGINX_CLIENT_MAX_BODY_SIZE", **env)


def test_nginx_body_limit_is_django_s_upload_limit(tmp_path):
    # The same variable, the same unit: Django's limit is UPLOAD_MAX_MB MiB,
    # and to nginx "7m" is 7 MiB.
    assert site_values(tmp_path, UPLOAD_MAX_MB="7").stdout == "7m\n"


def test_nginx_s_defaults_are_django_s(tmp_path):
    """Unset, UPLOAD_MAX_MB and LOG_FORMAT are what Django's settings make of
    them: Compose and Kubernetes give neither a default, so that each is
    written in project/settings/base.py and in 10-site.envsh, and held here."""
    from project.tests.test_settings import run_django

    django = run_django(
        "from django.conf import settings; "
        "print(settings.UPLOAD_MAX_BYTES // 1024 // 1024, settings.LOG_FORMAT)",
        UPLOAD_MAX_MB=None,
        LOG_FORMAT=None,
    )
    assert django.returncode == 0, django.stderr
    upload_max_mb, log_format = django.stdout.split()
    assert site_values(tmp_path).stdout == f"{upload_max_mb}m\n"
    assert site_value(tmp_path, "NGINX_LOG_FORMAT").stdout == f"{log_format}\n"


def test_make_dev_s_nginx_logs_as_the_dev_settings(tmp_path):
    """`make dev` logs text, Django's (settings/dev.py) and nginx's alike: the
    development stack gives nginx dev.py's default, which nginx has no way to
    read."""
    from project.tests.test_settings import run_django

    django = run_django(
        "from django.conf import settings; print(settings.LOG_FORMAT)",
        DJANGO_SETTINGS_MODULE="project.settings.dev",
        LOG_FORMAT=None,
    )
    assert django.returncode == 0, django.stderr
    dev = yaml.safe_load((BASE_DIR / "docker-compose.dev.yml").read_text())
    nginx_default = re.fullmatch(
        r"\$\{LOG_FORMAT:-(\w+)\}", dev["services"]["nginx"]["environment"]["LOG_FORMAT"]
    )
    assert nginx_default and nginx_default[1] == django.stdout.strip()


@pytest.mark.parametrize("value", ["0", "1.5", "10M", "-1"])
def test_nginx_refuses_to_start_with_a_bad_upload_limit(tmp_path, value):
    result = site_values(tmp_path, UPLOAD_MAX_MB=value)
    assert result.returncode != 0
    assert "UPLOAD_MAX_MB must be a whole number of megabytes" in result.stderr


# --- The access log's format: LOG_FORMAT, as the apps' ---------------------------


def test_nginx_logs_as_log_format_says(tmp_path):
    assert site_value(tmp_path, "NGINX_LOG_FORMAT").stdout == "json\n"
    assert site_value(tmp_path, "NGINX_LOG_FORMAT", LOG_FORMAT="text").stdout == "text\n"


def test_nginx_refuses_to_start_with_an_unknown_log_format(tmp_path):
    result = site_value(tmp_path, "NGINX_LOG_FORMAT", LOG_FORMAT="xml")
    assert result.returncode != 0
    assert "LOG_FORMAT must be json or text, not 'xml'" in result.stderr


# --- HSTS: one value, from HSTS_MAX_AGE and HSTS_PRELOAD, for nginx and Django --

# The header Django's SecurityMiddleware sends on an HTTPS request, with the
# production settings and DJANGO_HTTPS on.
DJANGO_HSTS = (
    "from django.http import HttpResponse; "
    "from django.middleware.security import SecurityMiddleware; "
    "from django.test import RequestFactory; "
    "request = RequestFactory().get('/', secure=True, HTTP_HOST='example.com'); "
    "print(SecurityMiddleware(lambda r: HttpResponse())(request)['Strict-Transport-Security'])"
)


def nginx_hsts(tmp_path, **env) -> str:
    result = site_value(tmp_path, "NGINX_STRICT_TRANSPORT_SECURITY", **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "max-age=31536000; includeSubDomains"),
        ({"HSTS_PRELOAD": "off"}, "max-age=31536000; includeSubDomains"),
        ({"HSTS_PRELOAD": "on"}, "max-age=31536000; includeSubDomains; preload"),
        ({"HSTS_MAX_AGE": "600"}, "max-age=600; includeSubDomains"),
    ],
    ids=["default", "preload-off", "preload-on", "max-age"],
)
def test_nginx_and_django_send_the_same_hsts_header(tmp_path, env, expected):
    from project.tests.test_settings import run_django

    django = run_django(DJANGO_HSTS, DJANGO_HTTPS="on", **env)
    assert django.returncode == 0, django.stderr
    assert django.stdout.strip() == expected
    assert nginx_hsts(tmp_path, **env) == expected


def test_deploy_checks_pass_with_hsts_preload_on_or_off():
    from project.tests.test_settings import manage

    for preload in ("on", "off"):
        result = manage(
            "check", "--deploy", "--fail-level", "WARNING", DJANGO_HTTPS="on", HSTS_PRELOAD=preload
        )
        assert result.returncode == 0, (preload, result.stderr)


@pytest.mark.parametrize("env", [{"HSTS_MAX_AGE": "1y"}, {"HSTS_PRELOAD": "maybe"}])
def test_nginx_refuses_to_start_with_a_bad_hsts_value(tmp_path, env):
    result = site_values(tmp_path, **env)
    assert result.returncode != 0
    assert next(iter(env)) in result.stderr


# --- The micro-cache: Django's per-visitor cookies, by name ----------------------

# Django's names for the cookies that say who is asking, in the production
# settings, with HTTPS on and off.
DJANGO_COOKIES = (
    "from django.conf import settings; "
    "print(settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME)"
)


@pytest.mark.parametrize("https", ["on", "off"])
def test_nginx_knows_django_s_per_visitor_cookies(https):
    """nginx answers a request that carries one from Django alone, never from
    the micro-cache (default.conf.template's $visitor_is_known). Its config
    cannot read Django's settings: a cookie renamed in one must be renamed
    in the other, and this fails until it is."""
    from project.tests.test_settings import run_django

    template = (BASE_DIR / "nginx" / "default.conf.template").read_text()
    key = re.search(r'^map "([^"]*)" \$visitor_is_known', template, re.MULTILINE)
    assert key, "no map to $visitor_is_known in default.conf.template"
    nginx = set(re.findall(r"\$cookie_(\w+)", key[1]))
    django = run_django(DJANGO_COOKIES, DJANGO_HTTPS=https)
    assert django.returncode == 0, django.stderr
    assert nginx == set(django.stdout.split())


# --- Proxies in front of nginx: NGINX_TRUSTED_PROXIES ------------------------------


def test_trusted_proxies_become_nginx_s_real_ip_sources(tmp_path):
    result = site_values(tmp_path, NGINX_TRUSTED_PROXIES="10.0.0.0/8,fd00::/8, 192.0.2.1")
    assert result.returncode == 0, result.stderr
    real_ip = (tmp_path / "trusted-proxies.real-ip.inc").read_text()
    assert real_ip.splitlines() == [
        "set_real_ip_from 10.0.0.0/8;",
        "set_real_ip_from fd00::/8;",
        "set_real_ip_from 192.0.2.1;",
    ]
    geo = (tmp_path / "trusted-proxies.geo.inc").read_text()
    assert geo.splitlines() == ["10.0.0.0/8 1;", "fd00::/8 1;", "192.0.2.1 1;"]


def test_no_trusted_proxies_by_default(tmp_path):
    assert site_values(tmp_path).returncode == 0
    assert (tmp_path / "trusted-proxies.real-ip.inc").read_text() == ""
    assert (tmp_path / "trusted-proxies.geo.inc").read_text() == ""


@pytest.mark.parametrize("value", ["10.0.0.0/8;include /etc/passwd", "all", "10.0.0.0/8/8"])
def test_nginx_refuses_to_start_with_a_bad_trusted_proxy(tmp_path, value):
    result = site_values(tmp_path, NGINX_TRUSTED_PROXIES=value)
    assert result.returncode != 0
    assert "NGINX_TRUSTED_PROXIES must list addresses or CIDR ranges" in result.stderr


# --- TLS: a mounted certificate nginx cannot read stops it, with the reason ----


@pytest.fixture
def letsencrypt():
    """certbot's folder as certbot leaves it: live/<name>/*.pem are relative
    links into archive/<name>/, numbered by renewal. In a temporary folder
    that anyone may enter, as a mounted one would be."""
    root = Path(tempfile.mkdtemp())
    try:
        root.chmod(0o755)
        archive, live = root / "archive" / "example.com", root / "live" / "example.com"
        archive.mkdir(parents=True)
        live.mkdir(parents=True)
        for name in ("fullchain", "privkey"):
            (archive / f"{name}1.pem").write_text("-----BEGIN ...\n")
            (archive / f"{name}1.pem").chmod(0o644)
            (live / f"{name}.pem").symlink_to(f"../../archive/example.com/{name}1.pem")
        for folder in (root / "archive", archive, root / "live", live):
            folder.chmod(0o755)
        yield root
    finally:
        shutil.rmtree(root)


def tls_file_check(path: Path) -> subprocess.CompletedProcess:
    """10-site.envsh's check of a certificate file, as an unprivileged user
    (nobody, when the tests run as root), as nginx's would make it. The script
    writes what it renders to a folder of its own, which that user may write."""
    rendered = Path(tempfile.mkdtemp())
    try:
        rendered.chmod(0o777)
        return subprocess.run(
            ["sh", "-c", f'. "{ENVSH}" && tls_file_readable "TLS certificate" "$0"', str(path)],
            env={"DJANGO_ALLOWED_HOSTS": "example.com", "NGINX_ENVSUBST_OUTPUT_DIR": str(rendered)},
            capture_output=True,
            text=True,
            timeout=30,
            **({"user": 65534, "group": 65534} if os.geteuid() == 0 else {}),
        )
    finally:
        shutil.rmtree(rendered)


def test_certbot_s_folder_mounted_whole_is_readable(letsencrypt):
    for name in ("fullchain", "privkey"):
        result = tls_file_check(letsencrypt / "live" / "example.com" / f"{name}.pem")
        assert (result.returncode, result.stderr) == (0, "")


def test_certbot_s_live_folder_alone_is_refused_with_the_reason(letsencrypt):
    # What TLS_CERT_DIR=/etc/letsencrypt/live/example.com mounts: the links,
    # without the archive they point into.
    mounted = letsencrypt / "mounted"
    shutil.copytree(letsencrypt / "live" / "example.com", mounted, symlinks=True)
    mounted.chmod(0o755)
    result = tls_file_check(mounted / "fullchain.pem")
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"nginx: cannot read the TLS certificate {mounted}/fullchain.pem: it is a symbolic "
        "link to ../../archive/example.com/fullchain1.pem, which is not in the container."
    )
    assert "TLS_CERT_DIR=/etc/letsencrypt" in result.stderr


def test_an_unreadable_certificate_is_refused_with_the_reason(letsencrypt):
    (letsencrypt / "archive" / "example.com" / "privkey1.pem").chmod(0o000)
    result = tls_file_check(letsencrypt / "live" / "example.com" / "privkey.pem")
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"nginx: cannot read the TLS certificate {letsencrypt}/live/example.com/privkey.pem: "
        "Permission denied"
    )


def test_a_missing_certificate_is_refused_with_the_reason(letsencrypt):
    result = tls_file_check(letsencrypt / "fullchain.pem")
    assert result.returncode == 1
    assert result.stderr == (
        f"nginx: cannot read the TLS certificate {letsencrypt}/fullchain.pem: no such file\n"
    )


def test_nginx_serves_media_as_the_s3_storage_stores_it():
    # One allow-list of types, in two languages: nginx's `types` block for the
    # media volume, apps/core/storage.py for a bucket.
    media = (BASE_DIR / "nginx/snippets/media.conf").read_text()
    block = re.search(r"\n\s*types \{(.*?)\}", media, re.S)[1]
    nginx_types = {
        extension: media_type
        for media_type, *extensions in (
            line.rstrip(";").split() for line in block.splitlines() if line.strip()
        )
        if extensions
        for extension in extensions
    }
    assert nginx_types == MEDIA_TYPES
    assert f"default_type {MEDIA_DEFAULT_TYPE};" in media
