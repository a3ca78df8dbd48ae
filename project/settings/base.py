"""Settings every environment shares.

Read top to bottom; dev.py, production.py and test.py change only what they
name. Every environment variable read here is a row of docs/configuration.md's
table. https://docs.djangoproject.com/en/6.1/ref/settings/
"""

from datetime import timedelta
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from project.env import BASE_DIR, env

# ---------------------------------------------------------------------------
# Core
# https://docs.djangoproject.com/en/6.1/ref/settings/#core-settings
# ---------------------------------------------------------------------------
# SECRET_KEY and ALLOWED_HOSTS are set by each environment module: production
# requires them from the environment, dev and test make their own.
DEBUG = False

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"
ASGI_APPLICATION = "project.asgi.application"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

INSTALLED_APPS = [
    # daphne first: it makes `runserver` serve ASGI, WebSockets included.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    # Users (AUTH_USER_MODEL) and the account pages (Accounts, below). Before
    # allauth: its templates of allauth's are the ones found.
    "apps.accounts",
    "allauth",
    "allauth.account",
    # Counts failed logins and locks out who makes too many (Logins, below).
    "axes",
    # Background tasks' table, in PostgreSQL (Tasks, below).
    "django_tasks_db",
    # The platform every app stands on: sessions, health, draining, the
    # WebSocket consumer base, the base template (apps/core).
    "apps.core",
    # The product. `make app NAME=...` adds new apps here.
    "apps.demo",  # [demo]
]

# Read here, for the middleware below; Metrics (further down) says what else
# it turns on.
METRICS_PORT = int(env.str("METRICS_PORT", default="") or 0)


def middleware(*, behind_nginx: bool, metrics: bool) -> list[str]:
    """MIDDLEWARE, outermost first: the one list, every environment's, each
    entry that only some have decided here. This module's own (runserver,
    tests) has no nginx in front; production.py, the image's settings, asks
    for the list behind it."""
    return [
        # Behind this project's nginx alone, which sends the one address it
        # saw in X-Forwarded-For: that address in place of nginx's own. First,
        # so that every line below logs it. Without nginx in front, a client
        # would choose its own address.
        *(["apps.core.middleware.ClientAddressMiddleware"] if behind_nginx else []),
        # Every log line about a request carries its id (Logging, below).
        "apps.core.middleware.RequestIdMiddleware",
        # Answers /healthz and /readyz for probes that know no allowed host.
        "apps.core.middleware.HealthCheckMiddleware",
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        # allauth's: carries a sign-in across its steps (confirm, then sign in).
        "allauth.account.middleware.AccountMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
        # With metrics on (METRICS_PORT): requests, errors and latency per
        # view, by route name (never the raw path, which would make a series
        # per URL): django-prometheus's series, counted by a middleware of
        # our own that updates those three alone (apps/core/metrics.py says
        # what it saves). Last but for axes, so that the status it counts is
        # the one sent (axes' 429 too).
        *(["apps.core.metrics.ViewMetricsMiddleware"] if metrics else []),
        # Last, as django-axes asks: turns a login refused for a lockout into 429.
        "axes.middleware.AxesMiddleware",
    ]


MIDDLEWARE = middleware(behind_nginx=False, metrics=bool(METRICS_PORT))

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# The platform's user model (apps/accounts/models.py): people sign in with an
# email address. Set before the first migration, as it must be.
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# ---------------------------------------------------------------------------
# Database: PostgreSQL in the stack, SQLite when DATABASE_URL is unset
# https://docs.djangoproject.com/en/6.1/ref/settings/#databases
# ---------------------------------------------------------------------------
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}


def password_once(url_name: str, in_url: str, name: str, given: str) -> str:
    """A server's password, given as `name` (the stack sets <name>_FILE, a
    file holding it), while the URL in `url_name` is configuration, with no
    password: `docker inspect`, `kubectl describe` and logs show URLs. One in
    the URL still works (a virtualenv's .env); in both is refused, as either
    choice could quietly use a password the other place no longer holds."""
    given = given.strip()  # a file written by echo ends in a newline
    if given and in_url:
        raise ImproperlyConfigured(
            f"{url_name} holds a password and {name} (or {name}_FILE) gives one too: "
            f"keep it in {name}_FILE alone, and take it out of {url_name}."
        )
    return given or in_url


# The password of the database's user (the stack's `app` role), which
# Django hands to the driver: PGPASSFILE would do, but libpq ignores a pgpass
# file that its group may read, as Kubernetes' Secret volumes are (fsGroup).
DATABASES["default"]["PASSWORD"] = password_once(
    "DATABASE_URL",
    DATABASES["default"].get("PASSWORD") or "",
    "DATABASE_PASSWORD",
    env.str("DATABASE_PASSWORD", default=""),
)
# Keep connections open between requests (in the pool below, or else for
# 60 s), and check them before reuse, so that a PostgreSQL restart costs one
# failed check rather than a failed request.
DATABASES["default"]["CONN_MAX_AGE"] = 60
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# The connection budget (deploy/kubernetes/README.md#the-connection-budget):
# each process holds at most DATABASE_POOL_SIZE connections, in psycopg's
# pool, whatever its threads; a request takes one at its first query and
# gives it back when it ends. One a process: a web pod's five Gunicorn
# workers (twenty threads) hold five, so that web and asgi at their
# autoscalers' maxima stay within PostgreSQL's 100 connections
# (tests/kubernetes/test_invariants.py counts them). A request that finds
# its process's connections taken waits for one, DATABASE_POOL_TIMEOUT
# seconds at most, then gets a 503 (apps/core/views.py), never PostgreSQL's
# "too many clients". 0: no pool, a connection kept per thread for 60 s.
DATABASE_POOL_SIZE = env.int("DATABASE_POOL_SIZE", default=1)
DATABASE_POOL_TIMEOUT = 10
# PostgreSQL ends runaway work of the app's connections
# (deploy/kubernetes/README.md#the-connection-budget): a statement running
# longer than this, and a transaction left idle longer than that (a request
# that holds a connection and a transaction while it waits on something
# else). A request whose query is cancelled gets a 503, as in a database
# outage; well under Gunicorn's 30 s timeout, so no worker hangs on one and
# is killed. In seconds, 0 for none: the migrate service and Job set 0, as a
# migration may rightly run longer.
DATABASE_STATEMENT_TIMEOUT = env.int("DATABASE_STATEMENT_TIMEOUT", default=10)
DATABASE_IDLE_IN_TRANSACTION_TIMEOUT = env.int("DATABASE_IDLE_IN_TRANSACTION_TIMEOUT", default=30)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    database_options = DATABASES["default"].setdefault("OPTIONS", {})
    # Fail fast when PostgreSQL is unreachable, rather than hang a worker.
    database_options.setdefault("connect_timeout", 5)
    # Given at connect (libpq's startup options), so they hold for every
    # connection of the app, on a managed server too, and for no one else.
    database_options["options"] = (
        f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT}s"
        f" -c idle_in_transaction_session_timeout={DATABASE_IDLE_IN_TRANSACTION_TIMEOUT}s"
    )
    if DATABASE_POOL_SIZE:
        # The pool keeps the connections; Django's own keeping is off, as
        # Django requires.
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        database_options["pool"] = {
            "min_size": 0,
            "max_size": DATABASE_POOL_SIZE,
            "timeout": DATABASE_POOL_TIMEOUT,
        }

# ---------------------------------------------------------------------------
# Redis: cache, session copies and channel layer
# ---------------------------------------------------------------------------
# One Redis server, a logical database for each use, so that each can be
# flushed, inspected or moved to its own server without touching the others:
#   /0  cache           (django-redis, CACHES["default"])
#   /1  session copies  (CACHES["sessions"], apps/core/sessions.py alone)
#   /2  channel layer   (channels-redis, CHANNEL_LAYERS["default"])
# REDIS_URL names the server (redis://host:6379); these numbers replace any
# database number in it. Without REDIS_URL (a plain virtualenv) each process
# keeps its cache and channel layer in memory, and sessions have no copies;
# production.py refuses that.
REDIS_URL = env.str("REDIS_URL", default="")
REDIS_DATABASES = {"cache": 0, "sessions": 1, "channels": 2}
# The stack's Redis requires a password (production.py requires one too),
# read through REDIS_PASSWORD_FILE as the database's is. It goes into the
# URLs built below, which only this process sees.
REDIS_PASSWORD = password_once(
    "REDIS_URL",
    unquote(urlsplit(REDIS_URL).password or ""),
    "REDIS_PASSWORD",
    env.str("REDIS_PASSWORD", default=""),
)

# A Redis that fails over (a primary and its replicas, watched by Sentinels,
# which tell clients which server is the primary): REDIS_SENTINELS lists the
# Sentinels (host:port, comma-separated; the port 26379 if none), and
# REDIS_URL's host is then the name they know the primary by
# (redis://mymaster), as django-redis and channels-redis both take it. The
# cache and the channel layer ask the Sentinels for the primary, and again
# after a failover; they read and write the primary alone, never a replica
# that may lag behind it. The Sentinels are asked without TLS or a password.
REDIS_SENTINELS = [
    (sentinel.hostname, sentinel.port or 26379)
    # As a URL's host and port: an IPv6 address in brackets ([fd00::1]:26379).
    for sentinel in map(urlsplit, (f"//{each}" for each in env.list("REDIS_SENTINELS", default=[])))
]
if REDIS_SENTINELS and urlsplit(REDIS_URL).scheme != "redis":
    # redis-py makes rediss:// connections that ignore the Sentinels, and
    # would look for a server named after the primary.
    raise ImproperlyConfigured(
        "With REDIS_SENTINELS, REDIS_URL is redis://<the primary's name in the Sentinels>: "
        "TLS (rediss://) through Sentinel is not supported."
    )


def redis_url(use: str) -> str:
    """REDIS_URL pointed at the logical database kept for `use`, with the password."""
    parts = urlsplit(REDIS_URL)
    if REDIS_PASSWORD and parts.password is None:
        user, _, host = parts.netloc.rpartition("@")  # the user as written, quoted
        parts = parts._replace(netloc=f"{user}:{quote(REDIS_PASSWORD, safe='')}@{host}")
    return urlunsplit(parts._replace(path=f"/{REDIS_DATABASES[use]}"))


def redis_cache(use: str, **options) -> dict:
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": redis_url(use),
        "OPTIONS": {
            # Short timeouts: a Redis outage should cost a request milliseconds,
            # not a worker's whole timeout.
            "SOCKET_CONNECT_TIMEOUT": 1,
            "SOCKET_TIMEOUT": 1,
            # JSON, not django-redis's default pickle: unpickling what Redis
            # hands back runs whatever code a writer to Redis chose. Cache
            # values must be JSON then.
            "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
            # With Sentinels, LOCATION's host is the primary's name. Not
            # django-redis's SentinelClient: it reads from the replicas.
            **(
                {
                    "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
                    "SENTINELS": REDIS_SENTINELS,
                }
                if REDIS_SENTINELS
                else {}
            ),
            **options,
        },
    }


def redis_channel_layer_host() -> dict[str, Any]:
    """channels-redis's connection: to REDIS_URL's server, or to the primary
    the Sentinels name."""
    connection: dict[str, Any] = {
        # Fail fast when Redis is unreachable; reconnect and subscribe
        # again by itself when it is back.
        "socket_connect_timeout": 2,
        "socket_timeout": 10,
        # A connection that Redis dropped (a restart, an outage, a failover)
        # is found broken only when next used: try again on a new one, rather
        # than answer that WebSocket's handshake with a 500. Twice, after 0.2
        # and 0.4 s: the layer's receiving task may be reconnecting the same
        # connection just then. redis-py's asyncio client retries nothing by
        # default.
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.1), retries=2),
    }
    if not REDIS_SENTINELS:
        return {"address": redis_url("channels"), **connection}
    parts = urlsplit(REDIS_URL)
    return {
        "master_name": parts.hostname,
        "sentinels": REDIS_SENTINELS,
        "db": REDIS_DATABASES["channels"],
        "username": unquote(parts.username) if parts.username else None,
        "password": REDIS_PASSWORD or None,
        **connection,
    }


if REDIS_URL:
    CACHES = {"default": redis_cache("cache"), "sessions": redis_cache("sessions")}
    CHANNEL_LAYERS: dict[str, dict[str, Any]] = {
        "default": {
            # Redis pub/sub: a message to a group is one PUBLISH, which Redis
            # hands to each Daphne process once, and each process to its own
            # sockets; the list-based RedisChannelLayer pushes a copy per socket
            # (docs/performance.md, scenario 6). Messages are not kept for a
            # socket that is not listening, which a chat can live with.
            # channels-redis's own, but that group_add() returns once Redis
            # has subscribed: a message sent to the group after that is not
            # lost (apps/core/channel_layer.py).
            "BACKEND": "apps.core.channel_layer.ConfirmedRedisPubSubChannelLayer",
            "CONFIG": {"hosts": [redis_channel_layer_host()]},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# ---------------------------------------------------------------------------
# Sessions: in PostgreSQL, read from a copy in Redis
# https://docs.djangoproject.com/en/6.1/topics/http/sessions/
# ---------------------------------------------------------------------------
# PostgreSQL keeps every session; a request reads the session's copy in Redis
# (/1), and asks PostgreSQL only when there is none. A session deleted from
# PostgreSQL, by any path, is not served again: the worker drops its copy at
# once, and copies are trusted only while a worker vouches for them (3 s).
# apps/core/sessions.py says how. Redis lost or unreachable: sessions are read
# from PostgreSQL, nobody is logged out.
SESSION_ENGINE = "apps.core.sessions"
# How long a copy lives before it is read from PostgreSQL again (it stays
# valid only while vouched for, whatever this says). 0: no copies, every
# request reads PostgreSQL, as Django's database engine does.
SESSION_COPY_SECONDS = env.int("SESSION_COPY_SECONDS", default=3600)

# ---------------------------------------------------------------------------
# Accounts: /accounts/ (apps/accounts), django-allauth's pages
# https://docs.allauth.org/en/latest/account/configuration.html
# ---------------------------------------------------------------------------
# Sign up with an email address and a password; the address must be confirmed
# (a link by mail) before the account can sign in. Sign in with the address.
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
# Sign-up and password reset answer the same whether the address has an
# account or not (the owner gets a mail saying so), and take the same time
# (apps/accounts/forms.py): no page tells who has an account.
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_FORMS = {"signup": "apps.accounts.forms.SignupForm"}
# Signing out is a POST (a form's button); a GET shows that form.
ACCOUNT_LOGOUT_ON_GET = False
# A confirmation link works once, for 3 days; a password reset link works
# once (it is signed with the password it replaces), for 1 day.
ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS = 3
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24
# Where signing in and out lead: pages of the platform's own, which every
# fork has (a fork without a home page would land on a 404). Point them at
# your product's pages (a URL or a URL's name).
LOGIN_REDIRECT_URL = "account_email"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
# allauth's rate limits (in the cache, Redis) stay on, but for signing in and
# up: they guard mail (one confirmation mail per address per 3 minutes, 5
# reset mails per address a minute, 20 per client) and a signed-in user's
# pages (password changes, 5 a minute). Failed sign-ins are django-axes' to
# count (Logins, below): one lockout and one 429 page for the admin and
# /accounts/ alike, kept in PostgreSQL, so that signing in needs no Redis.
# Sign-ups are nginx's to limit, as every POST. While Redis is down, the pages
# with a limit answer 503 (apps/core/views.py).
ACCOUNT_RATE_LIMITS = {"login": False, "login_failed": False, "signup": False}

# ---------------------------------------------------------------------------
# Logins: too many wrong passwords lock out the address, or the account
# https://django-axes.readthedocs.io/en/latest/4_configuration.html
# ---------------------------------------------------------------------------
# django-axes rather than django-ratelimit: it works inside django.contrib.auth
# (a backend that refuses before any password is hashed, and the
# user_login_failed signal that counts), so the admin's login and any other
# that goes through authenticate() are covered, with no view to decorate; it
# counts failures only, so logging in often costs nothing; and it answers 429.
# django-ratelimit limits views, and would need all three written around it.
AUTHENTICATION_BACKENDS = [
    # First: a locked-out client is refused here, before ModelBackend hashes
    # the password it sent (on purpose slow: what a flood of guesses would
    # spend web's CPU on).
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Two counts (apps/core/logins.py, LoginFailures), each locked on its own:
# failures at one account from one client (an address, an IPv6 /64), and
# failures from one client at any accounts. The tenth of the first, or the
# thirtieth of the second, within 15 minutes of the one before, locks that
# pair, or that client, until 15 minutes after it. Nothing locks an account
# from everywhere: whoever knows an address could then lock its owner out.
# So a guesser spread over many addresses gets 10 guesses at an account per
# address (per /64) every 15 minutes: Django's password validators make each
# guess count for little, and docs/security.md says how to keep /admin/ to
# known networks. Every lockout is in the admin's "Access attempts" list,
# and `manage.py axes_reset` lifts them sooner.
# The order matters to LoginFailures: the client, then the pair.
AXES_LOCKOUT_PARAMETERS = ["ip_address", ["username", "ip_address"]]
AXES_FAILURE_LIMIT = 10  # at one account, from one client
LOGIN_FAILURE_LIMIT_PER_CLIENT = 30  # from one client, at any accounts
AXES_COOLOFF_TIME = timedelta(minutes=15)
# Tries sent during a lockout are refused without being counted: they do not
# push its end back, and they write nothing.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# Counted in PostgreSQL (django-axes' database handler, with the two limits
# above), which every Gunicorn worker and web replica shares, and which a
# login needs anyway to find the user: a Redis outage changes nothing here,
# and there is no store of its own to fail. Expired counts are deleted as new
# failures come in.
AXES_HANDLER = "apps.core.logins.LoginFailures"
# The address ClientAddressMiddleware set, as nginx saw it; an IPv6 client's
# whole /64 counts as one address (apps/core/logins.py).
AXES_CLIENT_IP_CALLABLE = "apps.core.logins.client_network"
# The account an attempt is counted against: the address typed, in lower
# case, whether the form calls it `username` (the admin's) or `email`
# (/accounts/login/).
AXES_USERNAME_CALLABLE = "apps.core.logins.account_name"
# 429 with a page that says when to try again, and Retry-After.
AXES_LOCKOUT_CALLABLE = "apps.core.logins.lockout_response"
# No table of every successful login: it would grow without end. Failures are
# kept (and shown in the admin) only while they count.
AXES_DISABLE_ACCESS_LOG = True
# No banner in the log each time a process starts (manage.py commands too).
AXES_VERBOSE = False

# ---------------------------------------------------------------------------
# Tasks: work that must not happen inside a request, run by the worker
# https://docs.djangoproject.com/en/6.1/topics/tasks/
# ---------------------------------------------------------------------------
# Apps define tasks with @django.tasks.task and call .enqueue(): Django's own
# API, so a fork can change the backend here alone. Tasks are rows in
# PostgreSQL (django-tasks-db's table; apps/core/tasks/backend.py adds the
# enqueuing request's id), written in the caller's transaction: rolled back,
# a task never runs; committed, it does. The `worker` service runs them
# (`manage.py worker`, apps/core/tasks/worker.py), as many replicas as you
# like. At least once: a task whose worker died runs again, so every task must
# be safe to repeat (docs/background-tasks.md shows how).
TASKS = {"default": {"BACKEND": "apps.core.tasks.backend.DatabaseBackend"}}
# A task that raises is tried again, TASK_RETRY_BASE_SECONDS later, doubling
# each time (1, 2, 4, 8 s with the defaults), up to TASK_MAX_ATTEMPTS tries in
# all; then it is kept as failed, with its error, in the admin.
TASK_MAX_ATTEMPTS = 5
TASK_RETRY_BASE_SECONDS = 1
# The longest a task may run: past it, the attempt fails (TaskTimeLimitExceeded)
# and is retried as any failure is. A stopping worker finishes its task first,
# so the worker's stop grace period (docker-compose.yml, the Kubernetes
# Deployment) is longer than this.
TASK_TIME_LIMIT_SECONDS = 60
# A worker tells PostgreSQL it is alive every few seconds; one silent for
# TASK_WORKER_LEASE_SECONDS is taken for dead (killed, out of memory, its node
# lost), and the task it held is run again by another worker: within about
# this long, plus one of the workers' checks (every 5 s).
TASK_WORKER_LEASE_SECONDS = 15
# No wait between tries is longer than this (5 minutes).
TASK_RETRY_MAX_SECONDS = 300
# Tasks tried more often than TASK_MAX_ATTEMPTS: mail, until the mail server
# answers, for about a day (apps/core/mail.py).
TASK_MAX_ATTEMPTS_BY_TASK = {"apps.core.mail.deliver": 300}
# Finished tasks' rows (results, errors) are deleted after this long.
TASK_RESULTS_KEEP_DAYS = 7
# Periodic jobs: each task runs once every period (aligned to the epoch, in
# UTC: "1 day" is each midnight) however many workers run, and once at once
# after a downtime that missed its time. Every worker keeps the schedule; a
# row per job in PostgreSQL says which period has been enqueued
# (apps/core/tasks/schedules.py).
# Typed on a line of its own: tests/kubernetes/podman/play.py finds the jobs
# by the line below.
TASK_SCHEDULES: dict[str, dict[str, Any]]
TASK_SCHEDULES = {
    # Expired sessions' rows: nothing else deletes them.
    "sessions-clear": {"task": "apps.core.tasks.jobs.sessions_clear", "every": timedelta(days=1)},
    # Finished tasks' rows, older than TASK_RESULTS_KEEP_DAYS.
    "task-results-prune": {
        "task": "apps.core.tasks.jobs.task_results_prune",
        "every": timedelta(hours=1),
    },
    # [demo:begin]
    # The demo's uploads older than DEMO_UPLOADS_KEEP (their files, then their rows).
    "demo-uploads-expire": {"task": "apps.demo.tasks.uploads_expire", "every": timedelta(hours=1)},
    # [demo:end]
}

# ---------------------------------------------------------------------------
# Email: stored as tasks, sent by the worker (apps/core/mail.py)
# https://docs.djangoproject.com/en/6.1/topics/email/
# ---------------------------------------------------------------------------
# EMAIL_URL names the mail server, without its password:
#   smtp+tls://user@host:587   STARTTLS (most providers' submission port)
#   smtp+ssl://user@host:465   TLS from the first byte
#   smtp://host:1025           no TLS: a mail catcher on the same network only
# and EMAIL_PASSWORD_FILE holds the password. Unset: the worker writes each
# message to its log, and `check --deploy` warns that nothing is sent.
EMAIL_URL = env.str("EMAIL_URL", default="")
EMAIL_SCHEMES = {"smtp": {}, "smtp+tls": {"use_tls": True}, "smtp+ssl": {"use_ssl": True}}
# Every connection to the mail server gives up after this long (and the
# message is tried again later): a server that hangs must not hold the worker.
EMAIL_TIMEOUT_SECONDS = 10


def mail_transport(url: str) -> dict[str, Any]:
    """MAILERS' "transport": what the worker sends through, from EMAIL_URL."""
    if not url:
        return {"BACKEND": "apps.core.mail.LogBackend"}
    parts = urlsplit(url)
    if parts.scheme not in EMAIL_SCHEMES or not parts.hostname:
        raise ImproperlyConfigured(
            f"EMAIL_URL must be {' or '.join(f'{s}://host:port' for s in EMAIL_SCHEMES)}, "
            f"with the user before the host if the server wants one; not {parts.scheme}://..."
        )
    return {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": parts.hostname,
            "port": parts.port or {"smtp": 25, "smtp+tls": 587, "smtp+ssl": 465}[parts.scheme],
            "username": unquote(parts.username or ""),
            "password": password_once(
                "EMAIL_URL",
                unquote(parts.password or ""),
                "EMAIL_PASSWORD",
                env.str("EMAIL_PASSWORD", default=""),
            ),
            "timeout": EMAIL_TIMEOUT_SECONDS,
            **EMAIL_SCHEMES[parts.scheme],
        },
    }


MAILERS = {
    # What every sender uses: the message becomes a task, in the caller's
    # transaction.
    "default": {"BACKEND": "apps.core.mail.TaskBackend"},
    # What the worker sends that task through.
    "transport": mail_transport(EMAIL_URL),
}
# The sender of every message (production.py requires one when mail is sent),
# and of error reports.
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="webmaster@localhost")
SERVER_EMAIL = env.str("SERVER_EMAIL", default="") or DEFAULT_FROM_EMAIL

# ---------------------------------------------------------------------------
# WebSockets (apps/core/consumers.py)
# ---------------------------------------------------------------------------
# Each client (an IPv4 address or an IPv6 /64) may send this many messages a
# second on average over all its WebSockets, in bursts of up to
# WEBSOCKET_MESSAGE_BURST; past that, Daphne reads no more of the socket
# until the budget has room, so frames wait rather than being refused, and a
# socket whose frames have waited this many seconds without a break is closed
# (4008): apps/core/websocket_budget.py. Each asgi replica keeps its own count.
WEBSOCKET_MESSAGES_PER_SECOND = 5
WEBSOCKET_MESSAGE_BURST = 10
WEBSOCKET_OVER_BUDGET_SECONDS = 5

# ---------------------------------------------------------------------------
# Static files: hashed names, collected into the nginx image at build time
# https://docs.djangoproject.com/en/6.1/howto/static-files/deployment/
# ---------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}

# ---------------------------------------------------------------------------
# Media files: what users upload (default_storage)
# https://docs.djangoproject.com/en/6.1/topics/files/
# ---------------------------------------------------------------------------
# In the stack, MEDIA_ROOT is the `media` volume: web writes it, nginx reads
# it (mounted read-only) and serves it under /media/ as downloads that can
# never run as the site's own pages (nginx/snippets/media.conf). nginx runs as
# another user, so files and folders must be readable by everyone.
MEDIA_URL = "/media/"
MEDIA_ROOT = BASE_DIR / "media"
FILE_UPLOAD_PERMISSIONS = 0o644
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o755

# Or an S3-compatible bucket (AWS, MinIO, R2, ...), when one is named. Files
# are private to the bucket and reached through signed URLs that expire
# (django-storages' defaults), from the bucket's origin, never the site's,
# each stored with the type and disposition nginx would give it
# (apps/core/storage.py), never the one its uploader claimed.
MEDIA_S3_BUCKET = env.str("MEDIA_S3_BUCKET", default="")
if MEDIA_S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "apps.core.storage.MediaS3Storage",
        "OPTIONS": {
            "bucket_name": MEDIA_S3_BUCKET,
            # Unset: AWS itself; a URL for any other S3-compatible service.
            "endpoint_url": env.str("MEDIA_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("MEDIA_S3_REGION", default="") or None,
            # Unset: boto3's own search (an IAM role, ~/.aws, AWS_* variables).
            "access_key": env.str("MEDIA_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("MEDIA_S3_SECRET_ACCESS_KEY", default="") or None,
            # S3Storage overwrites a file of the same name by default: one
            # user's upload would replace another's. Get a new name instead,
            # as on disk.
            "file_overwrite": False,
        },
    }

# Limits: UPLOAD_MAX_MB is the largest request body, uploads included. nginx
# reads the same variable (nginx/10-site.envsh) and refuses a bigger body with
# 413 before Django sees it; Django's own limits are the same number, so that
# whatever passes nginx passes them, and they still hold without nginx
# (runserver). A form checks each file with apps.core.validators.
# validate_upload_size, which answers with a message rather than a 500.
# FILE_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) is Django's default: larger uploads are
# spooled to /tmp, a tmpfs in the stack.
UPLOAD_MAX_BYTES = env.int("UPLOAD_MAX_MB", default=1) * 1024 * 1024
if UPLOAD_MAX_BYTES <= 0:
    raise ImproperlyConfigured("UPLOAD_MAX_MB must be a whole number of megabytes, 1 or more.")
DATA_UPLOAD_MAX_MEMORY_SIZE = UPLOAD_MAX_BYTES
# [demo:begin]
# The demo's uploads (apps/demo/uploads.py) take files from anyone, into a
# volume on the database's disk. So each is kept DEMO_UPLOADS_KEEP_HOURS and
# then deleted (a job of the worker's schedule, below); while kept, it counts
# against its client's quota (an address, an IPv6 /64: apps/core/clients.py)
# and, if one is signed in, its account's, DEMO_UPLOAD_QUOTA_MB each, and
# against DEMO_UPLOADS_MAX_MB for everyone's together. An upload past a
# quota is refused with 429, past the total with 413, each with its reason
# on the page; nothing kept is touched. Each file counts as what it takes on
# disk: its blocks, and its folder's.
DEMO_UPLOAD_QUOTA_BYTES = env.int("DEMO_UPLOAD_QUOTA_MB", default=10) * 1024 * 1024
DEMO_UPLOADS_MAX_BYTES = env.int("DEMO_UPLOADS_MAX_MB", default=1024) * 1024 * 1024
DEMO_UPLOADS_KEEP = timedelta(hours=env.int("DEMO_UPLOADS_KEEP_HOURS", default=24))
# [demo:end]

# ---------------------------------------------------------------------------
# Security
# https://docs.djangoproject.com/en/6.1/topics/security/
# ---------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# ---------------------------------------------------------------------------
# Metrics: Prometheus, on a port of their own
# https://prometheus.github.io/client_python/
# ---------------------------------------------------------------------------
# web, asgi and the worker serve /metrics on METRICS_PORT (9100 in the
# stack), a port nginx never proxies and Compose never publishes: Gunicorn's
# master for all its workers (deploy/gunicorn.conf.py), Daphne for itself
# (project/asgi.py), the worker for itself (manage.py worker).
# Empty or 0: no metrics at all, none of what follows nor the view metrics'
# middleware (MIDDLEWARE, above), and nothing to pay for it on any request.
if METRICS_PORT:
    # Query counts, errors and durations: the PostgreSQL engine, wrapped
    # (django-prometheus's series, more cheaply: apps/core/postgresql/base.py);
    # its options (connect_timeout, CONN_HEALTH_CHECKS) stay as they are.
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"]["ENGINE"] = "apps.core.postgresql"
    # Cache gets, hits and misses: django-redis, wrapped; its options (the
    # JSON serializer, the timeouts) stay as they are.
    if CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache":
        CACHES["default"]["BACKEND"] = "apps.core.metrics.MeteredRedisCache"

# ---------------------------------------------------------------------------
# Logging: everything to stdout, where Docker and Kubernetes collect it
# https://docs.djangoproject.com/en/6.1/topics/logging/
# ---------------------------------------------------------------------------
# LOG_FORMAT: `json`, one object a line in the schema nginx, Gunicorn and
# Daphne share (project/logs.py), or `text` for people (dev.py's default).
# Every line written while a request is served carries its id, method, path
# and client address (apps/core/request_id.py): grep one request's id to
# follow it from nginx to Django. docs/operating.md ("Following one request")
# says how.
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"project": {"()": "project.logs.formatter", "log_format": LOG_FORMAT}},
    "filters": {"request": {"()": "apps.core.request_id.RequestContextFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "project",
            "filters": ["request"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    # Django's own handlers for its loggers (a console one when DEBUG is on,
    # mail to ADMINS when it is off) are dropped: every line goes to the
    # root's handler, once.
    "loggers": {"django": {"handlers": []}},
}

# ---------------------------------------------------------------------------
# Errors: reported to Sentry when SENTRY_DSN is set
# https://docs.sentry.io/platforms/python/integrations/django/
# ---------------------------------------------------------------------------
# Off (and sentry-sdk not even imported) unless a DSN is given. Each event
# carries the request's id as a tag (the same id as the log lines) and the
# release, and no personal data (project/sentry.py).
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    from project.sentry import sentry_init

    sentry_init(
        dsn=SENTRY_DSN,
        release=env.str("SENTRY_RELEASE", default="") or None,
        environment=env.str("SENTRY_ENVIRONMENT", default="production"),
    )
