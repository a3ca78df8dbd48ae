"""The production settings fail closed, and every variable is documented where
the README and .env.example say it is."""

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


# --- Every variable documented, and only real ones ---------------------------

# env.str("NAME"...), env.bool("NAME"...), env("NAME"...): how the code reads them.
CODE_READ = re.compile(r"""\benv(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]*)["']""")
COMPOSE_READ = re.compile(r"\$\{([A-Z][A-Z0-9_]*)")
ENV_EXAMPLE_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)
README_ROW = re.compile(r"^\| `([A-Z][A-Z0-9_]*)` \|", re.MULTILINE)


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


def test_env_example_and_readme_list_the_same_variables():
    documented = set(ENV_EXAMPLE_LINE.findall(BASE_DIR.joinpath(".env.example").read_text()))
    tabled = set(README_ROW.findall(BASE_DIR.joinpath("README.md").read_text()))
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
