"""Make the stack's secrets on first start, and keep them in two volumes.

Run once by the `secrets` service in docker-compose.yml, before anything else.
Nothing here is ever in the repository or an image: the files are made inside the
volumes, and stay there across restarts (`docker compose down -v` removes them).

    generate_secrets.py SECRETS_DIR SUPERUSER_DIR

In SECRETS_DIR (the `secrets` volume, which web, asgi and migrate read):

    django_secret_key   DJANGO_SECRET_KEY for web, asgi and migrate (via _FILE)
    postgres_password   the password of PostgreSQL's `app` role, which the db
                        service gives it when it makes it (deploy/postgres/)
    pgpass              the same password for the app, via libpq's PGPASSFILE
    redis_password      Redis's requirepass, and REDIS_PASSWORD_FILE for the app

In SUPERUSER_DIR (the `postgres-superuser` volume, which the app's containers
never mount: a compromised web process must not find it):

    password            the db service's POSTGRES_PASSWORD_FILE: the password
                        of PostgreSQL's superuser, `postgres`
    pgpass              the same, for the tests, which make their own databases

DJANGO_SECRET_KEY, when set for this service, replaces the stored key.
"""

import os
import secrets
import sys
from pathlib import Path

SECRETS_DIR = Path(sys.argv[1] if len(sys.argv) > 1 else "/secrets")
SUPERUSER_DIR = Path(sys.argv[2] if len(sys.argv) > 2 else "/postgres-superuser")


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

    if not (SECRETS_DIR / "postgres_password").exists():
        password = secrets.token_urlsafe(32)  # URL-safe: no ':' or '\' to escape in pgpass
        # libpq ignores a pgpass file that others can read. Written first: the
        # password file below is what marks the pair as made.
        secret_write("pgpass", f"*:*:*:*:{password}\n", mode=0o600)
        # Readable by the db container's own user, which is not this one.
        secret_write("postgres_password", password, mode=0o644)
        print("secrets: made a new PostgreSQL password for the app")

    if not (SUPERUSER_DIR / "password").exists():
        password = secrets.token_urlsafe(32)
        # As above: pgpass first, the password file marks the pair as made.
        secret_write("pgpass", f"*:*:*:postgres:{password}\n", mode=0o600, folder=SUPERUSER_DIR)
        secret_write("password", password, mode=0o644, folder=SUPERUSER_DIR)
        print("secrets: made a new PostgreSQL superuser password")

    if not (SECRETS_DIR / "redis_password").exists():
        # URL-safe: it goes into redis:// URLs and a redis.conf line unquoted.
        # Readable by the redis container's own user, which is not this one.
        secret_write("redis_password", secrets.token_urlsafe(32), mode=0o644)
        print("secrets: made a new Redis password")


if __name__ == "__main__":
    main()
