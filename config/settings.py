"""Settings for dbapi, read from the environment (12-factor, django-environ).

`ENVIRONMENT` (default `local`) names `env/<ENVIRONMENT>/.env`, which is loaded when present;
real environment variables win over the file. Every variable is documented in
`env/local/.env.example` and `env/production/.env.example`.

With nothing set, dbapi runs on the embedded default: a SQLite file and the local-memory cache.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import environ
from cryptography.fernet import Fernet
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
ENVIRONMENT = os.environ.get("ENVIRONMENT", "local")
ENV_FILE = BASE_DIR / "env" / ENVIRONMENT / ".env"
if ENV_FILE.is_file():
    # read_env() only sets variables that are not already in the environment.
    env.read_env(ENV_FILE)

LOCAL = ENVIRONMENT == "local"

# --- Core -----------------------------------------------------------------------------------------

# Outside local, a key anyone could know is refused at start-up, not merely warned about by
# `check --deploy`: sessions, password resets and signed values would be forgeable with it.
SECRET_KEY_MIN_LENGTH = 50


def _refuse_known_secret_key(key: str) -> None:
    """Raise when the key is short, Django's insecure kind, or copied from an .env.example."""
    advice = 'e.g. python -c "import secrets; print(secrets.token_urlsafe(50))"'
    if len(key) < SECRET_KEY_MIN_LENGTH:
        raise ImproperlyConfigured(
            f"SECRET_KEY is {len(key)} characters long; set it to {SECRET_KEY_MIN_LENGTH} or "
            f"more random characters, {advice}."
        )
    if key.startswith("django-insecure-"):
        raise ImproperlyConfigured(f"SECRET_KEY is Django's insecure kind; set it, {advice}.")
    for example in sorted(BASE_DIR.glob("env/*/.env.example")):
        if key in example.read_text():
            raise ImproperlyConfigured(
                f"SECRET_KEY is the published example value of "
                f"{example.relative_to(BASE_DIR)}; set your own, {advice}."
            )


if LOCAL:
    SECRET_KEY = env("SECRET_KEY", default="django-insecure-local-only-do-not-use-in-production")
else:
    SECRET_KEY = env("SECRET_KEY", default="")
    if not SECRET_KEY:
        raise ImproperlyConfigured(f"SECRET_KEY must be set when ENVIRONMENT={ENVIRONMENT}.")
    _refuse_known_secret_key(SECRET_KEY)

DEBUG = env.bool("DEBUG", default=LOCAL)
if DEBUG and not LOCAL:
    raise ImproperlyConfigured(f"DEBUG can only be on when ENVIRONMENT=local, not {ENVIRONMENT}.")

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if LOCAL else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CSRF_FAILURE_VIEW = "apps.core.views.csrf_failure"

INSTALLED_APPS = [
    # The admin, on a site that demands a second factor from staff (django-otp).
    "apps.twofactor.apps.TwoFactorAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Before whitenoise's and staticfiles' runserver: its own wraps theirs (request ids in the
    # development server's lines).
    "apps.core",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "csp",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "apps.twofactor",
    "apps.accounts",
    "apps.actions",
    "apps.example",
    "apps.hits",
    "apps.rpc",
]

MIDDLEWARE = [
    "apps.core.middleware.HttpMetricsMiddleware",
    "apps.core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",  # before whitenoise, so static files carry the policy too
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Pages in the language of Accept-Language (LANGUAGES); API_MIDDLEWARE has none: the API
    # answers machines, in English.
    "apps.core.languages.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(), lazily
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Bearer-authenticated JSON APIs under these paths go through API_MIDDLEWARE only: they use no
# session, CSRF cookie, message or frame (apps/core/wsgi.py). Empty: everything takes MIDDLEWARE.
API_PATH_PREFIXES = ["/actions/", "/api/v1/"]
API_MIDDLEWARE = [
    "apps.core.middleware.HttpMetricsMiddleware",
    "apps.core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "apps.core.middleware.AllowedHostsMiddleware",
]
# Answer POST /actions/... at the WSGI level, as API_MIDDLEWARE and Django's handler would, without
# URL resolving, the middleware chain and the request signals (apps/actions/wsgi.py).
ACTIONS_FAST_PATH = env.bool("ACTIONS_FAST_PATH", default=True)
# The same for POST /api/v1/otp/verify, the mobile API's busiest call (apps/twofactor/wsgi.py).
OTP_VERIFY_FAST_PATH = env.bool("OTP_VERIFY_FAST_PATH", default=True)

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# The languages of the pages and mails, chosen by the browser's Accept-Language; each but English
# has a catalogue in locale/<code>/LC_MESSAGES/django.po (README "Languages").
LANGUAGES = [("en", "English"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Databases ------------------------------------------------------------------------------------
# DATABASE_URL unset: the embedded SQLite file. Set: PostgreSQL with persistent connections.
# DATABASE_URL_<ALIAS> adds DATABASES["<alias>"] (lower-cased) for actions that run elsewhere.

DB_CONN_MAX_AGE = env.int("DB_CONN_MAX_AGE", default=600)
DB_CONNECT_TIMEOUT = env.int("DB_CONNECT_TIMEOUT", default=5)
# Check a kept connection with `SELECT 1` before each request uses it. Off (Django's default): it
# would cost every request a round trip; after a database restart, the first call on each ended
# connection answers 503 with nothing committed, to be retried, and the connection is replaced.
DB_CONN_HEALTH_CHECKS = env.bool("DB_CONN_HEALTH_CHECKS", default=False)
# Seconds a request or gRPC call waits for a database that does not answer (connecting, or silent
# in the middle of a statement) before it gives up, closes the connection and answers 503: a
# frozen or partitioned server never closes its connections (apps/core/database.py). Statements
# given a longer allowance are waited for while the server answers probes.
DB_TIMEOUT = env.float("DB_TIMEOUT", default=10.0)
# Seconds /health/ready waits for its databases, in all: under the readiness probe's timeout.
HEALTH_DB_TIMEOUT = env.float("HEALTH_DB_TIMEOUT", default=2.0)


# Behind PgBouncer in transaction pooling mode a server-side cursor cannot outlive its
# transaction: true makes Django's `.iterator()` and `Db.iterate` outside a transaction fetch
# with a plain cursor (inside one they stream either way, README "Behind PgBouncer").
DB_DISABLE_SERVER_SIDE_CURSORS = env.bool("DB_DISABLE_SERVER_SIDE_CURSORS", default=False)


def _database(url: str) -> dict:
    config = env.db_url_config(url)
    if config["ENGINE"] == "django.db.backends.postgresql":
        config["CONN_MAX_AGE"] = DB_CONN_MAX_AGE
        config["CONN_HEALTH_CHECKS"] = DB_CONN_HEALTH_CHECKS
        config["DISABLE_SERVER_SIDE_CURSORS"] = DB_DISABLE_SERVER_SIDE_CURSORS
        config.setdefault("OPTIONS", {}).setdefault("connect_timeout", DB_CONNECT_TIMEOUT)
    return config


DATABASES = {
    "default": (
        _database(os.environ["DATABASE_URL"])
        if os.environ.get("DATABASE_URL")
        else {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env("SQLITE_PATH", default="") or str(BASE_DIR / "db.sqlite3"),
        }
    )
}
for _name, _url in sorted(os.environ.items()):
    if _name.startswith("DATABASE_URL_") and _url:
        DATABASES[_name.removeprefix("DATABASE_URL_").lower()] = _database(_url)

# --- Cache ----------------------------------------------------------------------------------------
# REDIS_URL unset: the local-memory cache (one per process). Set: django-redis.

REDIS_URL = env("REDIS_URL", default="")
CACHE_KEY_PREFIX = env("CACHE_KEY_PREFIX", default="dbapi")
# Seconds a process goes without Redis after it failed (hits counted in the database, keys checked
# against it, logins not throttled) before trying it again: a dead Redis then costs one timeout
# per process and interval, not one per request (apps/core/cache.py).
CACHE_RETRY_AFTER = env.float("CACHE_RETRY_AFTER", default=5.0)
# Redis Sentinel: the sentinels (host:port, comma-separated) and the name of the master they
# monitor. Set, the cache asks them for the current master and follows a failover; REDIS_URL
# still gives the database number (and password), its host is not used.
REDIS_SENTINELS = env.list("REDIS_SENTINELS", default=[])
REDIS_SENTINEL_MASTER = env("REDIS_SENTINEL_MASTER", default="mymaster")


def _sentinel_address(address: str) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ImproperlyConfigured(f"REDIS_SENTINELS: {address!r} is not host:port.")
    return host.strip("[]"), int(port)


def _redis_cache(url: str) -> dict:
    options = {
        "CLIENT_CLASS": "django_redis.client.DefaultClient",
        # Fail fast when Redis is down, so callers can degrade instead of hanging.
        "SOCKET_CONNECT_TIMEOUT": env.float("REDIS_CONNECT_TIMEOUT", default=0.5),
        "SOCKET_TIMEOUT": env.float("REDIS_TIMEOUT", default=0.5),
    }
    if REDIS_SENTINELS:
        # django-redis' Sentinel client finds the master by the URL's host name.
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@{REDIS_SENTINEL_MASTER}" if credentials else REDIS_SENTINEL_MASTER
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        options.update(
            CLIENT_CLASS="django_redis.client.SentinelClient",
            CONNECTION_FACTORY="django_redis.pool.SentinelConnectionFactory",
            CONNECTION_POOL_CLASS="redis.sentinel.SentinelConnectionPool",
            SENTINELS=[_sentinel_address(address) for address in REDIS_SENTINELS],
            SENTINEL_KWARGS={
                "socket_connect_timeout": options["SOCKET_CONNECT_TIMEOUT"],
                "socket_timeout": options["SOCKET_TIMEOUT"],
            },
        )
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": CACHE_KEY_PREFIX,
        "OPTIONS": options,
    }


if REDIS_URL or REDIS_SENTINELS:
    CACHES = {"default": _redis_cache(REDIS_URL or "redis:///0")}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "dbapi",
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
    }

# --- Hit counter (apps.hits) ----------------------------------------------------------------------
# GET / counts in Redis; `manage.py flush_hits` moves the counts into the database.

# Answer GET / in front of Django's handler with only the middleware it needs (config/wsgi.py).
HITS_FAST_PATH = env.bool("HITS_FAST_PATH", default=True)
# Days the id of a flushed batch is kept, so a batch found again in Redis is never added twice.
HITS_BATCH_RETENTION_DAYS = env.int("HITS_BATCH_RETENTION_DAYS", default=7)

# --- Static files ---------------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = env("STATIC_ROOT", default="") or str(BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
# Locally whitenoise serves straight from static/ and the packages: no collectstatic needed.
WHITENOISE_USE_FINDERS = LOCAL
WHITENOISE_AUTOREFRESH = LOCAL
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # The manifest storage needs collectstatic first; the image runs it at build time.
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if LOCAL
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Security -------------------------------------------------------------------------------------
# Behind nginx, which terminates TLS and sets X-Forwarded-Proto.

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Proxies whose X-Forwarded-For says who the client is (apps/core/client_address.py): addresses or
# networks, or `*` for any peer. The variable gunicorn reads for X-Forwarded-Proto, same default.
FORWARDED_ALLOW_IPS = env.list("FORWARDED_ALLOW_IPS", default=["127.0.0.1", "::1"])
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not LOCAL)
# Probes and Prometheus speak plain HTTP to the pod.
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if LOCAL else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not LOCAL)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not LOCAL)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not LOCAL)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not LOCAL)
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy on every answer of MIDDLEWARE (pages, the admin, Swagger UI, error
# pages): scripts, styles, images and fonts from this site only, never inline, never a third
# party. `data:` images are the icons Swagger UI's stylesheet carries.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- REST framework and the OpenAPI schema --------------------------------------------------------

REST_FRAMEWORK = {
    "EXCEPTION_HANDLER": "apps.core.problems.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["apps.core.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.JSONParser"],
    # 401/403 before 406: who may call comes before what they accept (apps/core/negotiation.py).
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "apps.core.negotiation.CredentialsFirstNegotiation",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "apps.core.schema.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "dbapi",
    "DESCRIPTION": "Database actions, TOTP two-factor authentication and a hit counter.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request bodies get components of their own (`PersonRequest`), with what input alone has
    # (minLength, patterns); answers keep the plain names.
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "PREPROCESSING_HOOKS": [
        # First: the views' annotations, recorded as they were imported (apps/core/openapi.py).
        "apps.core.schema.prepare_views",
        "apps.actions.schema.add_action_endpoints",
    ],
}

# --- Logging --------------------------------------------------------------------------------------
# One JSON object per line on stdout, each carrying the request id, for filebeat and ELK.

LOG_LEVEL = env("LOG_LEVEL", default="INFO").upper()
# Paths whose next segments are a secret, masked in every log line that quotes them: the original
# mobile client sends a one-time code in GET /api/v1/otp/check/<code>, and a password reset link
# is /account/password/reset/<uidb64>/<token>/ (whoever reads the logs could use an unused one).
LOG_MASKED_PATH_PREFIXES = ["/api/v1/otp/check/", "/account/password/reset/"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "apps.core.logging.RequestIdFilter"},
        "secret_paths": {"()": "apps.core.logging.SecretPathFilter"},
    },
    "formatters": {"json": {"()": "apps.core.logging.JsonFormatter"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
            "filters": ["request_id", "secret_paths"],
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own handlers would print tracebacks as text; ours logs them as JSON.
        "django": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
    },
}

# --- Metrics and traces ---------------------------------------------------------------------------

# GET /metrics (Prometheus' text format) answers only `Authorization: Bearer <METRICS_TOKEN>`;
# unset, it is a 404. Under gunicorn one answer covers every worker (PROMETHEUS_MULTIPROC_DIR, a
# fresh directory per start that config/gunicorn.conf.py makes when it is unset).
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# The port of gunicorn's second listener (config/gunicorn.conf.py), the only one where /metrics
# answers: the Ingress and nginx reach the app's own port, where /metrics is then a 404, and
# only the monitoring namespace reaches this one. Unset (runserver, one listener): any port.
METRICS_PORT = env.int("METRICS_PORT", default=0)
# host:port where `manage.py grpcserver` serves its own metrics (unset: none).
GRPC_METRICS_BIND = env("GRPC_METRICS_BIND", default="")
# Whether calls, requests, hits and errors are counted at all: on when something exports them.
METRICS_ENABLED = env.bool("METRICS_ENABLED", default=bool(METRICS_TOKEN or GRPC_METRICS_BIND))
# OpenTelemetry traces go to this OTLP collector (http://collector:4317 over gRPC,
# http://collector:4318 over HTTP); unset: no tracing at all. The SDK's own OTEL_* variables
# (OTEL_TRACES_SAMPLER, OTEL_BSP_*, ...) apply.
OTEL_EXPORTER_OTLP_ENDPOINT = env("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
# How spans travel: `grpc` (OTLP/gRPC) or `http/protobuf` (OTLP/HTTP, to ENDPOINT/v1/traces).
# Anything else (the spec's `http/json`, which the Python exporters lack) stops the start-up
# rather than sending the spans somewhere they would never arrive.
OTEL_EXPORTER_OTLP_PROTOCOL = env("OTEL_EXPORTER_OTLP_PROTOCOL", default="grpc")
OTLP_PROTOCOLS = ("grpc", "http/protobuf")
if OTEL_EXPORTER_OTLP_PROTOCOL not in OTLP_PROTOCOLS:
    raise ImproperlyConfigured(
        f"OTEL_EXPORTER_OTLP_PROTOCOL must be one of {', '.join(OTLP_PROTOCOLS)}, "
        f"not {OTEL_EXPORTER_OTLP_PROTOCOL!r}."
    )
OTEL_SERVICE_NAME = env("OTEL_SERVICE_NAME", default="dbapi")
# Seconds the exporter tries to send a batch (the SDK reads it too), and the most a stopping
# process waits for the spans it still holds to be sent.
OTEL_EXPORTER_OTLP_TIMEOUT = env.float("OTEL_EXPORTER_OTLP_TIMEOUT", default=10.0)

# --- Database actions -----------------------------------------------------------------------------

# Largest request body an action accepts, in bytes (413 above it). nginx's limit should match.
ACTIONS_MAX_BODY = env.int("ACTIONS_MAX_BODY", default=1024 * 1024)
# How long a verified API key stays cached (seconds): also the longest a revocation can take when
# the cache could not be told of it (Redis paused or restarting). One query per key and interval.
API_KEY_CACHE_SECONDS = env.int("API_KEY_CACHE_SECONDS", default=2)
# Calls in one `POST /actions/batch` (gRPC Batch); and whether one batch may span several
# databases (each committed on its own at the end: not atomic across them, hence off).
ACTIONS_MAX_BATCH = env.int("ACTIONS_MAX_BATCH", default=100)
ACTIONS_BATCH_MULTI_DB = env.bool("ACTIONS_BATCH_MULTI_DB", default=False)
# Seconds an Idempotency-Key's answer is kept (`manage.py prune_idempotency_keys` drops older).
ACTIONS_IDEMPOTENCY_SECONDS = env.int("ACTIONS_IDEMPOTENCY_SECONDS", default=86400)
# Seconds an action's statements may run (PostgreSQL statement_timeout) unless the action
# declares its own `timeout=`; past it the call is rolled back and answers 504.
ACTIONS_STATEMENT_TIMEOUT = env.float("ACTIONS_STATEMENT_TIMEOUT", default=30.0)
# The rate of API clients that have none of their own (e.g. 100/s, 6000/min); empty: no limit.
ACTIONS_DEFAULT_RATE = env("ACTIONS_DEFAULT_RATE", default="")
# Processes that share a client's rate when Redis cannot count it: each allows rate / this.
ACTIONS_RATE_PROCESSES = env.int("ACTIONS_RATE_PROCESSES", default=2)

# --- gRPC -----------------------------------------------------------------------------------------
# `manage.py grpcserver` serves the actions (dbapi.v1.Actions) and the original api.Api over gRPC.
# A request message over ACTIONS_MAX_BODY is refused (RESOURCE_EXHAUSTED), as a body is over HTTP.

# host:port to listen on (`--bind` overrides it); 0.0.0.0:50051 in a container.
GRPC_BIND = env("GRPC_BIND", default="127.0.0.1:50051")
# Threads serving unary calls (`--workers` overrides it): calls served at once, each thread with
# its own database connection, kept as CONN_MAX_AGE says. A call past them is refused at once
# (RESOURCE_EXHAUSTED) rather than queued.
GRPC_WORKERS = env.int("GRPC_WORKERS", default=8)
# Streams served at once, on threads of their own so that no stream holds a unary call back; one
# past them is refused at once (RESOURCE_EXHAUSTED). Each may hold a connection and a transaction.
GRPC_MAX_STREAMS = env.int("GRPC_MAX_STREAMS", default=8)
# Seconds a stream may wait for its client to take what it sends (or send its next request)
# before it is cancelled and its transaction rolled back: a client that stops reading holds a
# thread, a connection and a transaction.
GRPC_STREAM_IDLE_TIMEOUT = env.float("GRPC_STREAM_IDLE_TIMEOUT", default=30.0)
# The most items the demo service (api.Api, which needs no key) gives in one call; above it,
# INVALID_ARGUMENT.
GRPC_DEMO_MAX_LENGTH = env.int("GRPC_DEMO_MAX_LENGTH", default=100_000)
if GRPC_MAX_STREAMS < 1 or GRPC_STREAM_IDLE_TIMEOUT <= 0:
    raise ImproperlyConfigured(
        "GRPC_MAX_STREAMS must be at least 1 and GRPC_STREAM_IDLE_TIMEOUT more than 0."
    )
# Seconds in-flight calls get to finish after SIGTERM; keep it under the orchestrator's grace.
GRPC_GRACE_SECONDS = env.float("GRPC_GRACE_SECONDS", default=20.0)

# --- Upstream services ----------------------------------------------------------------------------
# UPSTREAM_<NAME>_URL declares the upstream service "<name>" (lower-cased), reached with
# apps.core.upstreams.upstream("<name>") for http(s):// URLs, or upstream_channel("<name>") for
# grpc(s)://host:port. Optional per service: UPSTREAM_<NAME>_TIMEOUT (seconds),
# UPSTREAM_<NAME>_RETRIES and UPSTREAM_<NAME>_TOKEN (sent as `Authorization: Bearer <token>`).

# Defaults for every upstream: seconds to wait for it (then 504), retries of an idempotent call on
# a connection error or a 502/503/504, and the first pause between tries (doubled each time).
UPSTREAM_TIMEOUT = env.float("UPSTREAM_TIMEOUT", default=5.0)
UPSTREAM_RETRIES = env.int("UPSTREAM_RETRIES", default=2)
UPSTREAM_BACKOFF = env.float("UPSTREAM_BACKOFF", default=0.1)


def _upstream(name: str, url: str) -> dict:
    prefix = f"UPSTREAM_{name.upper()}_"
    if url.partition("://")[0] not in ("http", "https", "grpc", "grpcs"):
        raise ImproperlyConfigured(f"{prefix}URL must be an http(s):// or grpc(s):// URL.")
    return {
        "URL": url,
        "TIMEOUT": env.float(f"{prefix}TIMEOUT", default=UPSTREAM_TIMEOUT),
        "RETRIES": env.int(f"{prefix}RETRIES", default=UPSTREAM_RETRIES),
        "TOKEN": env.str(f"{prefix}TOKEN", default=""),
    }


UPSTREAMS = {}
for _name, _url in sorted(os.environ.items()):
    _match = re.fullmatch(r"UPSTREAM_([A-Z0-9_]+)_URL", _name)
    if _match and _url:
        UPSTREAMS[_match[1].lower()] = _upstream(_match[1], _url)

# --- Two-factor authentication (apps.twofactor, django-otp) ---------------------------------------

LOGIN_URL = "twofactor:login"
LOGIN_REDIRECT_URL = "twofactor:overview"
LOGOUT_REDIRECT_URL = "twofactor:login"
# Who must have a second factor: `none`, `staff` (staff and superusers) or `all`. Someone covered
# who has none is sent to enrol after the password and can open nothing else; the API answers
# their token 403 (enrolment-required) outside enrolment. The admin always needs a verified factor.
TWO_FACTOR_REQUIRED = env("TWO_FACTOR_REQUIRED", default="staff")
if TWO_FACTOR_REQUIRED not in ("none", "staff", "all"):
    raise ImproperlyConfigured(
        f"TWO_FACTOR_REQUIRED must be none, staff or all, not {TWO_FACTOR_REQUIRED!r}."
    )
# Seconds after the password or a code was entered during which factors (and backup codes) may
# be changed without entering one again.
TWO_FACTOR_REAUTH_SECONDS = env.int("TWO_FACTOR_REAUTH_SECONDS", default=300)
# Days a browser trusted at the code step of a login ("Trust this browser") skips that step after
# the password; 0 offers no such choice. A password change or reset revokes every trust.
TWO_FACTOR_TRUST_DAYS = env.int("TWO_FACTOR_TRUST_DAYS", default=30)
if TWO_FACTOR_TRUST_DAYS < 0:
    raise ImproperlyConfigured("TWO_FACTOR_TRUST_DAYS must be 0 (off) or a number of days.")

# Fernet keys (comma-separated) sealing TOTP secrets in the database: the first seals, every one
# unseals, so a new key goes first and the old one stays until `manage.py rotate_otp_keys` ran.
OTP_ENCRYPTION_KEYS = env.list("OTP_ENCRYPTION_KEYS", default=[])
_NEW_FERNET_KEY = (
    "python -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'"
)
if not OTP_ENCRYPTION_KEYS:
    if not LOCAL:
        raise ImproperlyConfigured(
            f"OTP_ENCRYPTION_KEYS must be set when ENVIRONMENT={ENVIRONMENT}: one or more Fernet "
            f"keys, the first sealing. Make one with {_NEW_FERNET_KEY}."
        )
    # Locally, a key derived from SECRET_KEY, so `make run` needs nothing set.
    OTP_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(
            hashlib.sha256(f"dbapi OTP_ENCRYPTION_KEYS {SECRET_KEY}".encode()).digest()
        ).decode()
    ]
for _number, _key in enumerate(OTP_ENCRYPTION_KEYS, start=1):
    try:
        Fernet(_key)
    except ValueError:
        raise ImproperlyConfigured(
            f"OTP_ENCRYPTION_KEYS: key {_number} is not a Fernet key (32 url-safe base64 bytes); "
            f"make one with {_NEW_FERNET_KEY}."
        ) from None
    for _example in [] if LOCAL else sorted(BASE_DIR.glob("env/*/.env.example")):
        if _key in _example.read_text():
            raise ImproperlyConfigured(
                f"OTP_ENCRYPTION_KEYS: key {_number} is the published example value of "
                f"{_example.relative_to(BASE_DIR)}; make your own with {_NEW_FERNET_KEY}."
            )

# Consecutive failed codes on an account that lock its second-factor step until staff unlock it
# in the admin (0: no cap); with OTP_LOCK_ALLOWS_BACKUP_CODES a backup code still works, and
# unlocks it.
OTP_MAX_FAILURES = env.int("OTP_MAX_FAILURES", default=100)
OTP_LOCK_ALLOWS_BACKUP_CODES = env.bool("OTP_LOCK_ALLOWS_BACKUP_CODES", default=True)
# django-otp throttling: after n failures a device waits FACTOR * 2^(n-1) seconds; 0 disables it.
OTP_THROTTLE_FACTOR = env.int("OTP_THROTTLE_FACTOR", default=1)
# The issuer shown by authenticator apps, in the provisioning URI otpauth://totp/<issuer>:<user>.
OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", default="dbapi")
# Hide TOTP keys from staff in the admin (the QR code page for desks).
OTP_ADMIN_HIDE_SENSITIVE_DATA = env.bool("OTP_ADMIN_HIDE_SENSITIVE_DATA", default=False)
# Seconds between the password step of a login and its second step.
OTP_LOGIN_TIMEOUT = env.int("OTP_LOGIN_TIMEOUT", default=300)
# Seconds a user token for the mobile API (POST /api/v1/auth/token) is valid.
USER_TOKEN_LIFETIME = env.int("USER_TOKEN_LIFETIME", default=86400)
# Password checks pass three limits before the (slow) password hasher runs; any of them answers
# 429 with Retry-After instead (apps/twofactor/login_limits.py).
# Wrong passwords for one username, within LOGIN_FAILURE_WINDOW seconds.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_FAILURE_WINDOW = env.int("LOGIN_FAILURE_WINDOW", default=900)
# Wrong passwords from one client address (see FORWARDED_ALLOW_IPS), within LOGIN_ADDRESS_WINDOW
# seconds; 0: no limit. Shared by every process through the cache.
LOGIN_ADDRESS_LIMIT = env.int("LOGIN_ADDRESS_LIMIT", default=20)
LOGIN_ADDRESS_WINDOW = env.int("LOGIN_ADDRESS_WINDOW", default=900)
# Password hashes one process computes per second, whoever asks (a burst of
# LOGIN_PROCESS_HASH_BURST at once), so that a flood from many addresses cannot take a worker's
# whole time. 0: no limit.
LOGIN_PROCESS_HASH_RATE = env.float("LOGIN_PROCESS_HASH_RATE", default=1.0)
LOGIN_PROCESS_HASH_BURST = env.int("LOGIN_PROCESS_HASH_BURST", default=10)
# Password reset links (/account/password/reset/): at most PASSWORD_RESET_LIMIT requests from one
# client address (past it, 429 with Retry-After) and as many mails to one email address (past it,
# the same answer and no mail) within PASSWORD_RESET_WINDOW seconds; 0: no limit. The form sends
# mail to any address it is given: without them, a way to flood someone's inbox.
PASSWORD_RESET_LIMIT = env.int("PASSWORD_RESET_LIMIT", default=5)
PASSWORD_RESET_WINDOW = env.int("PASSWORD_RESET_WINDOW", default=3600)

# --- Passkeys (WebAuthn, apps.twofactor.passkeys) -------------------------------------------------
# The relying party: the domain passkeys are bound to (browsers sign it; they refuse an IP address
# and any domain the page is not on) and the name authenticators show. Default: the first of
# ALLOWED_HOSTS that is a domain, so locally `localhost`.
_RP_HOSTS = [h.lstrip(".") for h in ALLOWED_HOSTS if h not in ("*",) and not h.startswith("[")]
WEBAUTHN_RP_ID = env("WEBAUTHN_RP_ID", default=_RP_HOSTS[0] if _RP_HOSTS else "localhost")
WEBAUTHN_RP_NAME = env("WEBAUTHN_RP_NAME", default="dbapi")
# Origins whose assertions are accepted (scheme://host[:port] as browsers report them; native apps
# report their own, e.g. android:apk-key-hash:…). Locally the development server's; elsewhere
# https://<WEBAUTHN_RP_ID>.
WEBAUTHN_ORIGINS = env.list(
    "WEBAUTHN_ORIGINS",
    default=(
        ["http://localhost:8000", "http://127.0.0.1:8000"]
        if LOCAL
        else [f"https://{WEBAUTHN_RP_ID}"]
    ),
)
# Seconds a registration or sign-in challenge can be answered; each is answered at most once.
WEBAUTHN_CHALLENGE_SECONDS = env.int("WEBAUTHN_CHALLENGE_SECONDS", default=300)

# --- Email and security events (apps.twofactor) ---------------------------------------------------
# Where mail goes, as a URL django-environ reads (smtp://user:password@host:25,
# smtp+tls://…:587, smtp+ssl://…:465, consolemail://): locally printed on the console, elsewhere
# the SMTP server on localhost unless set. People are mailed when a factor is added or removed,
# backup codes are made or used, the password changes and the second factor locks.
# The URL itself is not kept as a setting: it may carry the password, which Django's error pages
# hide only under names like EMAIL_HOST_PASSWORD.
_email = env.email_url("EMAIL_URL", default="consolemail://" if LOCAL else "smtp://localhost:25")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="dbapi <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Seconds a mail server may take to answer before the mail is left pending for
# `manage.py send_pending_notifications`: a slow server never holds a request for longer.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
# Events a page of /account/security/ and of GET /api/v1/account/events shows.
SECURITY_EVENTS_PAGE_SIZE = env.int("SECURITY_EVENTS_PAGE_SIZE", default=25)
