"""The production settings fail closed, and every variable is documented in
docs/configuration.md's table, the one list of them."""

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from project.env import BASE_DIR

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "project.settings.production",
    "DJANGO_SECRET_KEY": "a-long-random-value-only-for-this-test-" + "x" * 20,
    "DJANGO_ALLOWED_HOSTS": "example.com",
    "REDIS_URL": "redis://redis:6379",
    "REDIS_PASSWORD": "a-redis-password-only-for-this-test",
    "EMAIL_URL": "smtp+tls://mailer@mail.example.com",
    "EMAIL_PASSWORD": "a-mail-password-only-for-this-test",
    "DEFAULT_FROM_EMAIL": "Example <noreply@example.com>",
}


def run_django(code: str, **env_changes) -> subprocess.CompletedProcess:
    """Run `code` after django.setup() in a fresh interpreter, with the
    production variables changed as given (None removes one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(PRODUCTION_ENV)
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def manage(*args, **env_changes) -> subprocess.CompletedProcess:
    return run_django(
        f"from django.core.management import call_command; call_command(*{list(args)!r})",
        **env_changes,
    )


@pytest.mark.parametrize("name", ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "REDIS_URL"])
def test_production_refuses_to_start_without(name):
    result = run_django("", **{name: None})
    assert result.returncode != 0
    assert name in result.stderr.splitlines()[-1]


def test_production_refuses_any_host():
    result = run_django("", DJANGO_ALLOWED_HOSTS="*")
    assert result.returncode != 0
    assert "'*' is refused" in result.stderr


def test_production_reads_the_secret_key_from_a_file(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("from-a-file")
    result = run_django(
        "from django.conf import settings; print(settings.SECRET_KEY)",
        DJANGO_SECRET_KEY=None,
        DJANGO_SECRET_KEY_FILE=str(key_file),
    )
    assert result.stdout.strip() == "from-a-file", result.stderr


def test_production_has_debug_off():
    result = run_django("from django.conf import settings; print(settings.DEBUG)")
    assert result.stdout.strip() == "False", result.stderr


def test_deploy_checks_pass_with_https_on():
    result = manage("check", "--deploy", "--fail-level", "WARNING", DJANGO_HTTPS="on")
    assert result.returncode == 0, result.stderr


def test_deploy_checks_fail_with_https_off():
    # The switch is what makes the difference; the checks are not vacuous.
    result = manage("check", "--deploy", "--fail-level", "WARNING", DJANGO_HTTPS="off")
    assert result.returncode != 0
    assert "SECURE_SSL_REDIRECT" in result.stderr


# --- Mail: one variable chooses the transport -------------------------------------

MAIL_REPORT = (
    "import json; from django.conf import settings; "
    "print(json.dumps([settings.MAILERS, settings.DEFAULT_FROM_EMAIL, settings.SERVER_EMAIL]))"
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "smtp+tls://mailer@mail.example.com",
            {"host": "mail.example.com", "port": 587, "username": "mailer", "use_tls": True},
        ),
        (
            "smtp+ssl://mailer@mail.example.com:2465",
            {"host": "mail.example.com", "port": 2465, "username": "mailer", "use_ssl": True},
        ),
        ("smtp://mail:1025", {"host": "mail", "port": 1025, "username": ""}),
    ],
)
def test_email_url_chooses_the_transport_with_a_timeout(url, expected):
    result = run_django(MAIL_REPORT, EMAIL_URL=url)
    assert result.returncode == 0, result.stderr
    mailers, sender, server_sender = json.loads(result.stdout)
    # Every sender stores the message as a task; the worker sends it through
    # the transport.
    assert mailers["default"] == {"BACKEND": "apps.core.mail.TaskBackend"}
    transport = mailers["transport"]
    assert transport["BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    options = transport["OPTIONS"]
    assert {name: options[name] for name in expected} == expected
    assert options["password"] == "a-mail-password-only-for-this-test"
    assert options["timeout"] == 10
    assert (sender, server_sender) == ("Example <noreply@example.com>",) * 2


def test_email_password_from_a_file_and_never_in_the_url_too(tmp_path):
    password_file = tmp_path / "password"
    password_file.write_text("from-a-file\n")
    result = run_django(MAIL_REPORT, EMAIL_PASSWORD=None, EMAIL_PASSWORD_FILE=str(password_file))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["transport"]["OPTIONS"]["password"] == "from-a-file"

    result = run_django("", EMAIL_URL="smtp+tls://mailer:in-the-url@mail.example.com")
    assert result.returncode != 0
    assert "EMAIL_URL holds a password and EMAIL_PASSWORD" in result.stderr


@pytest.mark.parametrize("url", ["smtps://mail.example.com", "mail.example.com:587", "smtp+tls://"])
def test_email_url_that_names_no_known_transport_is_refused(url):
    result = run_django("", EMAIL_URL=url)
    assert result.returncode != 0
    assert "EMAIL_URL must be smtp://host:port or smtp+tls://host:port" in result.stderr


def test_production_refuses_to_send_mail_without_a_sender_of_its_own():
    result = run_django("", DEFAULT_FROM_EMAIL=None)
    assert result.returncode != 0
    assert "set DEFAULT_FROM_EMAIL too" in result.stderr.splitlines()[-1]


def test_without_a_transport_mail_goes_to_the_log_and_check_deploy_says_so():
    # `docker compose up` with no .env: starts, and sends nothing.
    result = run_django(MAIL_REPORT, EMAIL_URL=None, EMAIL_PASSWORD=None, DEFAULT_FROM_EMAIL=None)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["transport"] == {"BACKEND": "apps.core.mail.LogBackend"}
    result = manage("check", "--deploy", DJANGO_HTTPS="on", EMAIL_URL=None, DEFAULT_FROM_EMAIL=None)
    assert result.returncode == 0, result.stderr
    assert "(core.W001) No mail is sent: EMAIL_URL is not set" in result.stderr


# --- Uploads: where they are kept, and how big they may be ---------------------

STORAGE_REPORT = (
    "import json; from django.conf import settings; "
    "from django.core.files.storage import storages; s = storages['default']; "
    "print(json.dumps({'class': type(s).__name__, 'url': s.url('a/b.png'), "
    "'options': settings.STORAGES['default'].get('OPTIONS', {}), "
    "'location': str(getattr(s, 'location', ''))}))"
)


def test_uploads_go_to_the_media_volume_by_default():
    result = run_django(STORAGE_REPORT)
    report = json.loads(result.stdout)
    assert report["class"] == "FileSystemStorage", result.stderr
    assert report["location"] == str(BASE_DIR / "media")
    assert report["url"] == "/media/a/b.png"


def test_a_bucket_name_selects_s3_compatible_storage():
    # No S3 server here: the settings and the storage built from them, and a
    # URL signed offline with the given keys.
    result = run_django(
        STORAGE_REPORT,
        MEDIA_S3_BUCKET="uploads",
        MEDIA_S3_ENDPOINT_URL="https://s3.example.com",
        MEDIA_S3_REGION="eu-west-1",
        MEDIA_S3_ACCESS_KEY_ID="AKIAEXAMPLE",
        MEDIA_S3_SECRET_ACCESS_KEY="example-secret",
    )
    report = json.loads(result.stdout)
    assert report["class"] == "MediaS3Storage", result.stderr
    assert report["options"] == {
        "bucket_name": "uploads",
        "endpoint_url": "https://s3.example.com",
        "region_name": "eu-west-1",
        "access_key": "AKIAEXAMPLE",
        "secret_key": "example-secret",
        "file_overwrite": False,
    }
    # Private objects, reached through expiring signed URLs, on the bucket's host.
    assert report["url"].startswith("https://s3.example.com/uploads/a/b.png?")
    assert "Signature=" in report["url"] and "Expires=" in report["url"]


def test_the_upload_limit_sets_django_s_limits():
    result = run_django(
        "from django.conf import settings; "
        "print(settings.UPLOAD_MAX_BYTES, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)",
        UPLOAD_MAX_MB="7",
    )
    assert result.stdout.split() == [str(7 * 1024 * 1024)] * 2, result.stderr


def test_an_upload_limit_of_zero_is_refused():
    result = run_django("", UPLOAD_MAX_MB="0")
    assert result.returncode != 0
    assert "UPLOAD_MAX_MB" in result.stderr.splitlines()[-1]


# --- Metrics: everything, or nothing at all ------------------------------------

METRICS_REPORT = (
    "import json; from django.conf import settings; "
    "print(json.dumps({'port': settings.METRICS_PORT, "
    "'middleware': [m for m in settings.MIDDLEWARE if 'Metrics' in m or 'prometheus' in m], "
    "'database': settings.DATABASES['default'], 'cache': settings.CACHES['default']}))"
)
STACK_SERVICES = {
    "DATABASE_URL": "postgres://app@db:5432/app",
    "DATABASE_PASSWORD": "a-database-password-only-for-this-test",
}


@pytest.mark.parametrize("port", ["", "0", None])
def test_metrics_off_adds_no_middleware_and_wraps_no_backend(port):
    result = run_django(METRICS_REPORT, METRICS_PORT=port, **STACK_SERVICES)
    report = json.loads(result.stdout)
    assert report["port"] == 0, result.stderr
    assert report["middleware"] == []
    assert report["database"]["ENGINE"] == "django.db.backends.postgresql"
    assert report["cache"]["BACKEND"] == "django_redis.cache.RedisCache"


def test_metrics_on_wraps_the_backends_and_keeps_their_options():
    off = json.loads(run_django(METRICS_REPORT, METRICS_PORT="", **STACK_SERVICES).stdout)
    result = run_django(METRICS_REPORT, METRICS_PORT="9100", **STACK_SERVICES)
    on = json.loads(result.stdout)
    assert on["port"] == 9100, result.stderr
    assert on["middleware"] == ["apps.core.metrics.ViewMetricsMiddleware"]
    assert on["database"] == {
        **off["database"],
        "ENGINE": "apps.core.postgresql",
    }
    assert on["database"]["OPTIONS"]["connect_timeout"] == 5
    assert on["database"]["CONN_HEALTH_CHECKS"] is True
    assert on["cache"] == {
        **off["cache"],
        "BACKEND": "apps.core.metrics.MeteredRedisCache",
    }
    assert on["cache"]["OPTIONS"]["SERIALIZER"] == "django_redis.serializers.json.JSONSerializer"


# --- The middleware: one list, written once (base.py's middleware()) -----------

MIDDLEWARE_REPORT = "from django.conf import settings; print(' '.join(settings.MIDDLEWARE))"


@pytest.mark.parametrize("port", ["", "9100"], ids=["metrics-off", "metrics-on"])
def test_production_runs_the_one_list_behind_nginx(port):
    from project.settings.base import middleware

    result = run_django(MIDDLEWARE_REPORT, METRICS_PORT=port)
    listed = result.stdout.split()
    assert listed == middleware(behind_nginx=True, metrics=bool(port)), result.stderr
    # The client's address first, so that every line about a request logs it.
    assert listed[:2] == [
        "apps.core.middleware.ClientAddressMiddleware",
        "apps.core.middleware.RequestIdMiddleware",
    ]
    assert listed[-1] == "axes.middleware.AxesMiddleware"


def test_without_nginx_in_front_a_client_may_not_choose_its_address(settings):
    # The settings the tests and runserver run with.
    assert "apps.core.middleware.ClientAddressMiddleware" not in settings.MIDDLEWARE


# --- Secrets: the passwords are files, the URLs hold none ----------------------

# The URLs the stack gives (docker-compose.yml, the Kubernetes ConfigMap), and
# the variable that gives each one's password.
SERVERS = [
    ("DATABASE_URL", "postgres://app@db:5432/app", "DATABASE_PASSWORD"),
    ("REDIS_URL", "redis://redis:6379", "REDIS_PASSWORD"),
]
PASSWORDS_REPORT = """
import json
from django.conf import settings
print(json.dumps({
    "database": settings.DATABASES["default"]["PASSWORD"],
    "cache": settings.CACHES["default"]["LOCATION"],
    "channels": settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"],
}))
"""


def test_the_passwords_come_from_their_files(tmp_path):
    (tmp_path / "postgres_password").write_text("from-a-file\n")  # as echo writes one
    (tmp_path / "redis_password").write_text("from/a file")
    result = run_django(
        PASSWORDS_REPORT,
        DATABASE_URL="postgres://app@db:5432/app",
        DATABASE_PASSWORD_FILE=str(tmp_path / "postgres_password"),
        REDIS_URL="redis://redis:6379",
        REDIS_PASSWORD=None,
        REDIS_PASSWORD_FILE=str(tmp_path / "redis_password"),
    )
    assert json.loads(result.stdout or "null") == {
        "database": "from-a-file",
        "cache": "redis://:from%2Fa%20file@redis:6379/0",
        "channels": "redis://:from%2Fa%20file@redis:6379/2",
    }, result.stderr


def test_a_password_in_the_url_alone_still_works():
    # A virtualenv's .env, say: one place, so no doubt which one counts.
    result = run_django(
        PASSWORDS_REPORT,
        DATABASE_URL="postgres://app:in-the-url@db:5432/app",
        DATABASE_PASSWORD=None,
        DATABASE_PASSWORD_FILE=None,  # the tests container's
        REDIS_URL="redis://someone:in-the-url@redis:6379",
        REDIS_PASSWORD=None,
        REDIS_PASSWORD_FILE=None,
    )
    assert json.loads(result.stdout or "null") == {
        "database": "in-the-url",
        "cache": "redis://someone:in-the-url@redis:6379/0",
        "channels": "redis://someone:in-the-url@redis:6379/2",
    }, result.stderr


# --- Redis through Sentinel -------------------------------------------------

# The connection pools the cache, the session copies and the channel layer
# make from the settings, as each library builds them (which connects to
# nothing yet): whom they ask, for which primary, and what they send it.
SENTINEL_REPORT = """
import json
from channels_redis.utils import create_pool
from django.conf import settings
from django.core.cache import caches

def described(pool):
    return {
        "pool": type(pool).__module__ + "." + type(pool).__name__,
        "primary": pool.service_name,
        "primary only": pool.is_master,
        "sentinels": [
            [sentinel.connection_pool.connection_kwargs[key] for key in ("host", "port")]
            for sentinel in pool.sentinel_manager.sentinels
        ],
        "db": int(pool.connection_kwargs["db"]),
        "password": pool.connection_kwargs["password"],
    }

pools = {
    alias: caches[alias].client.get_client(write=False).connection_pool
    for alias in ("default", "sessions")
}
pools["channels"] = create_pool(settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0])
print(json.dumps({use: described(pool) for use, pool in pools.items()}))
"""


def test_redis_through_sentinel():
    result = run_django(
        SENTINEL_REPORT,
        REDIS_URL="redis://mymaster",
        REDIS_SENTINELS="sentinel-1:26379,sentinel-2,[fd00::3]:26380",
        REDIS_PASSWORD_FILE=None,  # the tests container's: REDIS_PASSWORD's instead
    )
    sentinels = [["sentinel-1", 26379], ["sentinel-2", 26379], ["fd00::3", 26380]]
    primary = {
        "primary": "mymaster",
        # Reads too: a replica may lag behind what was just written.
        "primary only": True,
        "sentinels": sentinels,
        "password": PRODUCTION_ENV["REDIS_PASSWORD"],
    }
    assert json.loads(result.stdout or "null") == {
        "default": {"pool": "redis.sentinel.SentinelConnectionPool", "db": 0, **primary},
        "sessions": {"pool": "redis.sentinel.SentinelConnectionPool", "db": 1, **primary},
        "channels": {"pool": "redis.asyncio.sentinel.SentinelConnectionPool", "db": 2, **primary},
    }, result.stderr


def test_sentinel_with_tls_refuses_to_start():
    result = run_django("", REDIS_URL="rediss://mymaster", REDIS_SENTINELS="sentinel-1:26379")
    assert result.returncode != 0
    assert "REDIS_SENTINELS" in result.stderr


@pytest.mark.parametrize(("url_name", "url", "name"), SERVERS)
def test_a_password_in_the_url_and_in_a_file_is_refused(tmp_path, url_name, url, name):
    password_file = tmp_path / "password"
    password_file.write_text("in-the-file")
    with_password = url.replace("://", "://someone:in-the-url@")
    result = run_django("", **{url_name: with_password, f"{name}_FILE": str(password_file)})
    assert result.returncode != 0
    last = result.stderr.splitlines()[-1]
    assert "ImproperlyConfigured" in last
    assert url_name in last and f"{name}_FILE" in last
    # And the message shows neither password.
    assert "in-the-url" not in result.stderr and "in-the-file" not in result.stderr


@pytest.mark.parametrize(("url_name", "url", "name"), SERVERS)
def test_production_refuses_a_server_without_a_password(url_name, url, name):
    result = run_django("", **{url_name: url, name: None, f"{name}_FILE": None})
    assert result.returncode != 0
    assert f"Set {name}_FILE" in result.stderr.splitlines()[-1]


@pytest.mark.parametrize("name", ["DJANGO_SECRET_KEY", "DATABASE_PASSWORD", "REDIS_PASSWORD"])
def test_a_secret_file_that_is_missing_is_named_with_its_variable(tmp_path, name):
    missing = tmp_path / "missing"
    result = run_django("", **STACK_SERVICES, **{f"{name}_FILE": str(missing)})
    assert result.returncode != 0
    assert f"{name}_FILE is {missing}, which cannot be read" in result.stderr.splitlines()[-1]


# --- Every variable documented, and only real ones ---------------------------

# env.str("NAME"...), env.bool("NAME"...), env("NAME"...): how the code reads them.
CODE_READ = re.compile(r"""\benv(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]*)["']""")
COMPOSE_READ = re.compile(r"\$\{([A-Z][A-Z0-9_]*)")
# $NAME or ${NAME...}: how nginx's scripts read them.
SHELL_READ = re.compile(r"\$\{?([A-Z][A-Z0-9_]*)")
ENV_EXAMPLE_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)
CONFIGURATION_ROW = re.compile(r"^\| `([A-Z][A-Z0-9_]*)` \|", re.MULTILINE)


def documented_variables() -> set[str]:
    """The rows of docs/configuration.md's table: every variable, once.
    .env.example holds a few of them, as examples."""
    return set(CONFIGURATION_ROW.findall(BASE_DIR.joinpath("docs", "configuration.md").read_text()))


def variables_read_by_nginx() -> set[str]:
    nginx = BASE_DIR / "nginx"
    scripts = [*nginx.glob("*.envsh"), *nginx.glob("*.sh")]
    return {name for path in scripts for name in SHELL_READ.findall(path.read_text())}


def compose_files() -> dict[str, dict]:
    return {
        path.name: yaml.safe_load(path.read_text()) for path in BASE_DIR.glob("docker-compose*.yml")
    }


def variables_read_by_code() -> set[str]:
    sources = [
        *BASE_DIR.joinpath("project").rglob("*.py"),
        *BASE_DIR.joinpath("deploy").glob("*.py"),
    ]
    sources = [path for path in sources if "tests" not in path.parts]
    return {name for path in sources for name in CODE_READ.findall(path.read_text())}


def test_code_reads_the_variables_we_expect():
    # Guards the pattern above: if it stopped matching, the tests below would pass vacuously.
    assert {
        "DJANGO_SECRET_KEY",
        "DATABASE_URL",
        "DATABASE_PASSWORD",
        "REDIS_URL",
        "REDIS_PASSWORD",
        "WEB_CONCURRENCY",
    } <= variables_read_by_code()


def test_nginx_reads_the_variables_we_expect():
    # Guards the pattern above, as test_code_reads_the_variables_we_expect does.
    assert {"UPLOAD_MAX_MB", "LOG_FORMAT", "NGINX_TRUSTED_PROXIES"} <= variables_read_by_nginx()


def test_env_example_names_only_variables_of_the_table():
    # Examples for a first .env, each a row of the table, which is the list.
    examples = set(ENV_EXAMPLE_LINE.findall(BASE_DIR.joinpath(".env.example").read_text()))
    assert examples - documented_variables() == set()


def test_every_variable_the_code_reads_is_documented():
    assert variables_read_by_code() - documented_variables() == set()


# Read by Compose itself, from .env, rather than by a compose file.
COMPOSE_OWN = {"COMPOSE_FILE"}


def test_every_documented_variable_is_read_somewhere():
    compose = {
        name
        for path in BASE_DIR.glob("docker-compose*.yml")
        for name in COMPOSE_READ.findall(path.read_text())
    }
    unread = documented_variables() - variables_read_by_code() - variables_read_by_nginx()
    assert unread - compose - COMPOSE_OWN == set()


# --- Every variable reaches what reads it ---------------------------------------

DJANGO_IMAGE_TARGET = "runtime"  # deploy/Dockerfile's target for Django's services


def test_a_variable_set_in_env_reaches_every_django_container():
    """Compose passes .env whole to the services of Django's image, so that a
    new variable is a line of settings and a row of the table, and no line of
    docker-compose.yml; and starts without a .env."""
    services = compose_files()["docker-compose.yml"]["services"]
    django = [
        name
        for name, service in services.items()
        if service.get("build", {}).get("target") == DJANGO_IMAGE_TARGET
    ]
    assert {"web", "asgi", "worker", "migrate"} <= set(django)
    for name in django:
        assert {"path": ".env", "required": False} in services[name].get("env_file", []), name


def test_every_variable_nginx_reads_reaches_nginx():
    """nginx takes no .env (it would see the secrets in it): each documented
    variable its scripts read is named in its environment."""
    given = {
        name
        for compose in compose_files().values()
        for name in compose.get("services", {}).get("nginx", {}).get("environment", {})
    }
    assert (variables_read_by_nginx() & documented_variables()) - given == set()
