"""deploy/generate_secrets.py, run as the secrets service runs it, in folders of
the test's: each secret file has its final mode from its creation on; and run
by the Kubernetes local overlay's make-secrets.sh, the same files."""

import stat
import subprocess
import sys
import textwrap
from pathlib import Path

from project.env import BASE_DIR

GENERATE_SECRETS = BASE_DIR / "deploy" / "generate_secrets.py"

# With a umask of 0 a file made without an explicit mode is readable (and
# writable) by everyone, and chmod raises: the modes must come from creation.
UNDER_UMASK_0_WITHOUT_CHMOD = textwrap.dedent(
    """
    import os, pathlib, runpy, sys

    def chmod_refused(*args, **kwargs):
        raise AssertionError("chmod after creation: the file had another mode before")

    os.umask(0)
    os.chmod = os.fchmod = chmod_refused
    pathlib.Path.chmod = chmod_refused
    sys.argv = ["generate_secrets.py", *sys.argv[1:]]
    runpy.run_path({script!r}, run_name="__main__")
    """
)


def secrets_generate(folder, **env) -> subprocess.CompletedProcess:
    """The secrets volume's files in `folder`, the superuser's in
    folder/superuser, the database server's and Redis's own in folder/db and
    folder/redis: as Compose's secrets service runs it."""
    for server in SERVER_FOLDERS:
        (folder / server).mkdir(exist_ok=True)
    program = UNDER_UMASK_0_WITHOUT_CHMOD.format(script=str(GENERATE_SECRETS))
    return subprocess.run(
        [
            *[sys.executable, "-c", program, str(folder), str(folder / "superuser")],
            *[f"--db={folder / 'db'}", f"--redis={folder / 'redis'}"],
        ],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


SERVER_FOLDERS = ["superuser", "db", "redis"]


def mode_of(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secret_files_are_made_with_their_final_modes(tmp_path):
    result = secrets_generate(tmp_path)
    assert result.returncode == 0, result.stderr
    assert {path.name: mode_of(path) for path in tmp_path.iterdir() if path.is_file()} == {
        "django_secret_key": 0o600,
        "postgres_password": 0o644,  # read by the db container's own user
        "redis_password": 0o644,  # read by the redis container's own user
    }
    # Each read by its server's own user.
    assert {path.name: mode_of(path) for path in (tmp_path / "superuser").iterdir()} == {
        "password": 0o644,
    }
    assert {path.name: mode_of(path) for path in (tmp_path / "db").iterdir()} == {
        "postgres_password": 0o644,
    }
    assert {path.name: mode_of(path) for path in (tmp_path / "redis").iterdir()} == {
        "redis_password": 0o644,
        "redis_admin_password": 0o644,
    }


def test_each_server_gets_the_apps_password_for_it_and_no_other(tmp_path):
    assert secrets_generate(tmp_path).returncode == 0
    for server, name in [("db", "postgres_password"), ("redis", "redis_password")]:
        assert (tmp_path / server / name).read_text() == (tmp_path / name).read_text()
    # The admin's is Redis's alone: not among the app's secrets.
    admin = (tmp_path / "redis" / "redis_admin_password").read_text()
    assert all(admin not in path.read_text() for path in tmp_path.glob("*") if path.is_file())
    # A password changed in the app's secrets reaches its server's copy at
    # the next run (its next start).
    (tmp_path / "redis_password").write_text("changed")
    assert secrets_generate(tmp_path).returncode == 0
    assert (tmp_path / "redis" / "redis_password").read_text() == "changed"


def test_the_superuser_password_is_not_among_the_apps_secrets(tmp_path):
    assert secrets_generate(tmp_path).returncode == 0
    superuser_password = (tmp_path / "superuser" / "password").read_text()
    for path in tmp_path.iterdir():
        if path.is_file():
            assert superuser_password not in path.read_text(), path.name


def test_a_given_key_replaces_the_stored_one_with_the_same_mode(tmp_path):
    assert secrets_generate(tmp_path).returncode == 0
    result = secrets_generate(tmp_path, DJANGO_SECRET_KEY="given")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "django_secret_key").read_text() == "given"
    assert mode_of(tmp_path / "django_secret_key") == 0o600
    assert not list(tmp_path.glob("*.partial"))


def test_a_second_run_keeps_every_secret(tmp_path):
    """The secrets service runs at every `docker compose up`, make-secrets.sh
    before every apply: the passwords must outlive them, as the servers keep
    the ones they were first given."""
    assert secrets_generate(tmp_path).returncode == 0
    first = {path: path.read_text() for path in tmp_path.rglob("*") if path.is_file()}
    result = secrets_generate(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert {path: path.read_text() for path in tmp_path.rglob("*") if path.is_file()} == first


def files_in(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}


def test_the_kubernetes_local_overlay_makes_the_same_files_with_this_generator(tmp_path):
    """make-secrets.sh runs this generator: the local overlay's Secrets hold the
    files Compose's volumes do, by the same names (its kustomization.yaml and
    tests/kubernetes/ take it from there)."""
    compose = tmp_path / "compose"
    compose.mkdir()
    assert secrets_generate(compose).returncode == 0
    overlay = tmp_path / "overlay"
    result = subprocess.run(
        [BASE_DIR / "deploy/kubernetes/overlays/local/make-secrets.sh", str(overlay)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    made = overlay / "secrets"
    # The superuser's folder is postgres-superuser/ there, superuser/ here;
    # the db pod reads the app's password from django-secrets, whose key it
    # alone mounts, and so has no copy.
    assert files_in(made) == {
        name.replace("superuser/", "postgres-superuser/", 1)
        for name in files_in(compose)
        if not name.startswith("db/")
    }
    # Readable by the one who made them alone.
    assert {mode_of(made), mode_of(made / "postgres-superuser"), mode_of(made / "redis")} == {0o700}
