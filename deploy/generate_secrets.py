"""Make the stack's secrets, once, and keep them: the one generator of them.

Compose's `secrets` service runs it on every start, before anything else, in
its two volumes; the Kubernetes local overlay's make-secrets.sh runs it into
the files its Secrets are made of; for the production overlay, it makes the
files to write into its secrets/ (deploy/kubernetes/README.md). The files, and
so the variables that name them, are the same everywhere. A file already
there is kept, so a second run changes nothing. Nothing here is ever in the
repository or an image.

    generate_secrets.py SECRETS_DIR [SUPERUSER_DIR] [--db DIR] [--redis DIR]

In SECRETS_DIR (the `secrets` volume, the `django-secrets` Secret), what the
app reads, each through a variable that names the file:

    django_secret_key   DJANGO_SECRET_KEY_FILE
    postgres_password   DATABASE_PASSWORD_FILE: the password of PostgreSQL's
                        `app` role, which the database server gives it when
                        it makes it (deploy/postgres/create-app-role.sh)
    redis_password      REDIS_PASSWORD_FILE: the password of Redis's user for
                        the app (`default`, which may run no script and no
                        dangerous command: docker-compose.yml's redis)

In SUPERUSER_DIR, when given (the `postgres-superuser` volume or Secret, which
the app's containers never mount: a compromised web process must not find it):

    password            the database server's POSTGRES_PASSWORD_FILE: the
                        password of PostgreSQL's superuser, `postgres`; and
                        the tests' DATABASE_PASSWORD_FILE, as they make their
                        own databases

Each server mounts its own folder alone (Compose's `db-secrets` and
`redis-secrets` volumes), never the app's: Redis must not read the
database's password, nor the database the secret key. In the --db DIR:

    postgres_password   a copy of the app's, for the server to make the role

In the --redis DIR:

    redis_password      a copy of the app's, for the server to check
    redis_admin_password
                        Redis's `admin` user's, who may run anything: for an
                        operator at the server (docs/operating.md), never
                        the app

The copies are written again on every run, so a password changed in
SECRETS_DIR reaches its server at the next start.

The URLs are configuration, without the passwords (DATABASE_URL, REDIS_URL).
DJANGO_SECRET_KEY, when set for this program, replaces the stored key.
"""

import argparse
import os
import secrets
from pathlib import Path

arguments = argparse.ArgumentParser(description="Make the stack's secrets, once, and keep them.")
arguments.add_argument("secrets_dir", type=Path)
arguments.add_argument("superuser_dir", type=Path, nargs="?")
arguments.add_argument("--db", type=Path, help="the database server's own folder")
arguments.add_argument("--redis", type=Path, help="the Redis server's own folder")
ARGS = arguments.parse_args()
SECRETS_DIR = ARGS.secrets_dir


def secret_write(name: str, value: str, *, mode: int, folder: Path = SECRETS_DIR) -> None:
    """Write atomically, so a reader never sees half a file, and with its final
    mode from the first byte: os.open creates the file with `mode`, where
    write_text then chmod would leave it readable under the umask's mode in
    between. The umask is cleared meanwhile so that it cannot narrow `mode`
    (0o644 must stay readable by the db container's user)."""
    path = folder / name
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)  # left by a start that died midway
    umask = os.umask(0)
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    finally:
        os.umask(umask)
    with os.fdopen(descriptor, "w") as file:
        file.write(value)
    partial.replace(path)


def main() -> None:
    given_key = os.environ.get("DJANGO_SECRET_KEY", "")
    if given_key:
        secret_write("django_secret_key", given_key, mode=0o600)
        print("secrets: using DJANGO_SECRET_KEY from the environment")
    elif not (SECRETS_DIR / "django_secret_key").exists():
        secret_write("django_secret_key", secrets.token_urlsafe(50), mode=0o600)
        print("secrets: made a new Django secret key")

    # URL-safe, as every password here: nothing to quote in a redis.conf
    # line, a shell word or a URL.
    if not (SECRETS_DIR / "postgres_password").exists():
        # Readable by the db container's own user, which is not this one.
        secret_write("postgres_password", secrets.token_urlsafe(32), mode=0o644)
        print("secrets: made a new PostgreSQL password for the app")

    if ARGS.superuser_dir and not (ARGS.superuser_dir / "password").exists():
        # As above: the db container's user reads it.
        secret_write("password", secrets.token_urlsafe(32), mode=0o644, folder=ARGS.superuser_dir)
        print("secrets: made a new PostgreSQL superuser password")

    if not (SECRETS_DIR / "redis_password").exists():
        # Readable by the redis container's own user, which is not this one.
        secret_write("redis_password", secrets.token_urlsafe(32), mode=0o644)
        print("secrets: made a new Redis password")

    if ARGS.db:
        server_copy("postgres_password", ARGS.db)
    if ARGS.redis:
        server_copy("redis_password", ARGS.redis)
        if not (ARGS.redis / "redis_admin_password").exists():
            secret_write(
                "redis_admin_password", secrets.token_urlsafe(32), mode=0o644, folder=ARGS.redis
            )
            print("secrets: made a new Redis admin password")


def server_copy(name: str, folder: Path) -> None:
    """The app's secret `name`, in a server's own folder, as the server's
    user reads it (0o644, as the app's copy)."""
    secret_write(name, (SECRETS_DIR / name).read_text(), mode=0o644, folder=folder)


if __name__ == "__main__":
    main()
