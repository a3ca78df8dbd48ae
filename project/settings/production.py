"""The image's settings (wsgi.py, asgi.py and the Dockerfile select them).

Fail closed: every value that must differ per deployment is required, and a
missing one stops start-up with ImproperlyConfigured naming the variable.
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import (
    DATABASES,
    EMAIL_URL,
    METRICS_PORT,
    REDIS_PASSWORD,
    REDIS_URL,
    env,
    middleware,
)

DEBUG = False

SECRET_KEY = env.str("DJANGO_SECRET_KEY")

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
if not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "Set DJANGO_ALLOWED_HOSTS to the host names this site answers to, "
        "comma-separated (for example example.com,www.example.com); '*' is refused."
    )

# Behind nginx, which alone reaches Gunicorn and Daphne: the client's address
# is in X-Forwarded-For (base.py's middleware() says where that goes).
MIDDLEWARE = middleware(behind_nginx=True, metrics=bool(METRICS_PORT))

if not REDIS_URL:
    # base.py would fall back to per-process memory: the cache would not be
    # shared and WebSocket messages would not cross Daphne processes.
    raise ImproperlyConfigured("Set the REDIS_URL environment variable (redis://host:6379).")

# Every Redis and PostgreSQL server has a password: a missing one is a
# mistake in the deployment, not a server that takes anyone. SQLite (no
# DATABASE_URL) has none to give.
if not REDIS_PASSWORD:
    raise ImproperlyConfigured(
        "Set REDIS_PASSWORD_FILE to a file holding the Redis server's password (its requirepass)."
    )
database = DATABASES["default"]
if database["ENGINE"] != "django.db.backends.sqlite3" and not database["PASSWORD"]:
    raise ImproperlyConfigured(
        "Set DATABASE_PASSWORD_FILE to a file holding the password of DATABASE_URL's user."
    )

# Mail that really leaves needs a sender of this site's own: Django's default,
# webmaster@localhost, is refused by most servers, or lands in spam.
if EMAIL_URL and not env.str("DEFAULT_FROM_EMAIL", default=""):
    raise ImproperlyConfigured(
        "EMAIL_URL is set: set DEFAULT_FROM_EMAIL too, the address mail is sent from "
        "(for example Example <noreply@example.com>)."
    )

# ---------------------------------------------------------------------------
# HTTPS: one switch, DJANGO_HTTPS, for when browsers reach the site over TLS
# https://docs.djangoproject.com/en/6.1/howto/deployment/checklist/#https
# ---------------------------------------------------------------------------
# Off by default so the local stack works on http://localhost:8000. Turn it on
# only where TLS terminates in front of Django: nginx then sets
# X-Forwarded-Proto itself, overwriting whatever the client sent, so Django may
# trust it.
HTTPS = env.bool("DJANGO_HTTPS", default=False)
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # HSTS: the same two variables set nginx's header (nginx/10-site.envsh),
    # which is the one browsers get (nginx drops Django's copy); Django's is
    # for a deployment without nginx in front.
    SECURE_HSTS_SECONDS = env.int("HSTS_MAX_AGE", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Preload is a choice, not a default: once a domain is on browsers' lists,
    # leaving takes months, and every subdomain must have HTTPS for good. Without
    # it, check --deploy's reminder (W021) says nothing a fork has not chosen.
    SECURE_HSTS_PRELOAD = env.bool("HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
