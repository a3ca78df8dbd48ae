"""The production settings fail closed, and every variable is documented where
docs/configuration.md and .env.example say it is."""

import json
import os
import re
import subprocess
import sys

import pytest

from project.env import BASE_DIR

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "project.settings.production",
    "DJANGO_SECRET_KEY": "a-long-random-value-only-for-this-test-" + "x" * 20,
    "DJANGO_ALLOWED_HOSTS": "example.com",
    "REDIS_URL": "redis://redis:6379",
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
    assert report["class"] == "S3Storage", result.stderr
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
STACK_SERVICES = {"DATABASE_URL": "postgres://app@db:5432/app"}


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


# --- Every variable documented, and only real ones ---------------------------

# env.str("NAME"...), env.bool("NAME"...), env("NAME"...): how the code reads them.
CODE_READ = re.compile(r"""\benv(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]*)["']""")
COMPOSE_READ = re.compile(r"\$\{([A-Z][A-Z0-9_]*)")
ENV_EXAMPLE_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)
CONFIGURATION_ROW = re.compile(r"^\| `([A-Z][A-Z0-9_]*)` \|", re.MULTILINE)


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
        "REDIS_URL",
        "WEB_CONCURRENCY",
    } <= variables_read_by_code()


def test_env_example_and_the_configuration_page_list_the_same_variables():
    documented = set(ENV_EXAMPLE_LINE.findall(BASE_DIR.joinpath(".env.example").read_text()))
    page = BASE_DIR.joinpath("docs", "configuration.md").read_text()
    tabled = set(CONFIGURATION_ROW.findall(page))
    assert documented == tabled


def test_every_variable_the_code_reads_is_documented():
    documented = set(ENV_EXAMPLE_LINE.findall(BASE_DIR.joinpath(".env.example").read_text()))
    assert variables_read_by_code() - documented == set()


# Read by Compose itself, from .env, rather than by a compose file.
COMPOSE_OWN = {"COMPOSE_FILE"}


def test_every_documented_variable_is_read_somewhere():
    documented = set(ENV_EXAMPLE_LINE.findall(BASE_DIR.joinpath(".env.example").read_text()))
    compose = {
        name
        for path in BASE_DIR.glob("docker-compose*.yml")
        for name in COMPOSE_READ.findall(path.read_text())
    }
    assert documented - variables_read_by_code() - compose - COMPOSE_OWN == set()
