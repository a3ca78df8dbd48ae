"""nginx/10-site.envsh, the values nginx's template is rendered with, as the
nginx image's entrypoint sources it (no container needed)."""

import subprocess

import pytest

from project.env import BASE_DIR

ENVSH = BASE_DIR / "nginx" / "10-site.envsh"


def site_values(tmp_path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", "-c", f'. "{ENVSH}" && echo "$NGINX_CLIENT_MAX_BODY_SIZE"'],
        env={
            "DJANGO_ALLOWED_HOSTS": "example.com",
            "NGINX_ENVSUBST_OUTPUT_DIR": str(tmp_path),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_nginx_body_limit_is_django_s_upload_limit(tmp_path):
    # The same variable, the same unit: Django's limit is UPLOAD_MAX_MB MiB,
    # and to nginx "7m" is 7 MiB.
    assert site_values(tmp_path).stdout == "1m\n"
    assert site_values(tmp_path, UPLOAD_MAX_MB="7").stdout == "7m\n"


@pytest.mark.parametrize("value", ["0", "1.5", "10M", "-1"])
def test_nginx_refuses_to_start_with_a_bad_upload_limit(tmp_path, value):
    result = site_values(tmp_path, UPLOAD_MAX_MB=value)
    assert result.returncode != 0
    assert "UPLOAD_MAX_MB must be a whole number of megabytes" in result.stderr
