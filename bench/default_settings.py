"""Scenario 4's "common default": the benchmark's settings (bench/settings.py)
with the choices most Django templates ship in place of this project's tuning.

Mounted into the app image as project.settings.bench_default by
bench/compose.yml, for the web-default service only; never used in production.
"""

from project.settings.bench import *  # noqa: F403
from project.settings.bench import CACHES
from redis._parsers import _RESP2Parser

# Django's database session engine, in place of apps/core/sessions.py (the
# same queries; it adds only a 503 in place of a 400 when PostgreSQL is down).
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# No hiredis: redis-py's pure-Python reply parser (the one it picks when
# redis is installed without the [hiredis] extra).
for cache in CACHES.values():
    cache["OPTIONS"]["CONNECTION_POOL_KWARGS"] = {"parser_class": _RESP2Parser}
