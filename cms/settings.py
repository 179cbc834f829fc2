"""Tessera settings: one module, driven by environment variables.

Without any variable set this is the embedded profile (SQLite file, eager Celery, console
email, media on local disk). DATABASE_URL and CELERY_BROKER_URL switch to PostgreSQL and
Redis/RabbitMQ; nothing else changes.
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.db.utils import InterfaceError as DatabaseInterfaceError
from django.db.utils import OperationalError as DatabaseOperationalError

from cms.logging import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# Off unless asked for: `make run` (development) is the only place that turns it on.
DEBUG = env_bool("DJANGO_DEBUG", False)
DEVELOPMENT_SECRET_KEY = "embedded-profile-only-not-secret-change-me-in-production"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "").strip()
if not DEBUG and SECRET_KEY in ("", DEVELOPMENT_SECRET_KEY):
    # Sessions, CSRF tokens and recipient pseudonyms are keyed with it: a key from the code
    # would let anyone forge them. Refuse to start rather than run with one.
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set. Outside development (DJANGO_DEBUG=1, what `make run` "
        "sets) Tessera needs its own secret key: generate one with\n"
        "    python -c 'import secrets; print(secrets.token_urlsafe(50))'\n"
        "and export DJANGO_SECRET_KEY=<that value> (keep it secret, the same on every process)."
    )
SECRET_KEY = SECRET_KEY or DEVELOPMENT_SECRET_KEY
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.forms",  # widget templates for FORM_RENDERER below
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "guardian",
    "simple_history",
    "django_celery_beat",
    "csp",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_prose_editor",  # static files of the authors' editor (content/forms.py)
    "content",
    "approvals",
    "journeys",
    "delivery",
    "analytics",
    "orchestration",
    "demo",  # last: the top floor, imports every app above
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "cms.middleware.RequestIdMiddleware",
    "cms.logging.RequestLogMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified() (second factor)
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",  # request.htmx (the journey builder)
    "simple_history.middleware.HistoryRequestMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into the 429 answer
]
# Channel-token calls to the API (Authorization: Token, a path under API_PATH_PREFIXES)
# take this chain instead (cms/handlers.py, the WSGI application): the same security
# headers, request id, request log and CommonMiddleware, without the layers that serve
# people (session, CSRF cookie, sign-in, second factor, messages, htmx, history user,
# sign-in lockouts), which a token call never uses. Same order as in MIDDLEWARE.
API_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "cms.middleware.RequestIdMiddleware",
    "cms.logging.RequestLogMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
API_PATH_PREFIXES = ("/api/",)

ROOT_URLCONF = "cms.urls"
# Widgets render through TEMPLATES, so templates/ can override one (the admin's date/time
# pair gets a label per input: templates/admin/widgets/split_datetime.html).
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"
WSGI_APPLICATION = "cms.wsgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # psycopg prepares a statement on the server from its 5th run on one connection — only
    # the few hot statements sent through `cms.db.bound_cursor` (Django's own cursor binds
    # on the client and never prepares): parsed and planned once per connection, not per
    # request. Behind a pooler that cannot keep prepared statements across transactions
    # (PgBouncer before 1.21 in transaction mode), set DATABASE_PREPARED_STATEMENTS=false.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "prepare_threshold", 5 if env_bool("DATABASE_PREPARED_STATEMENTS", True) else None)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent readers with one writer. WAL with synchronous=NORMAL stays crash-safe
    # but drops the fsync per commit that made every delivery-log write cost milliseconds.
    # Transactions begin IMMEDIATE: they take the write lock up front and wait for it (up
    # to `timeout` seconds) instead of failing with "database is locked" when a read lock
    # cannot be upgraded mid-transaction. The one SQLite locking rule: no retry loops.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=20, transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    )
    # Tests run on a file like the embedded profile does, one per process: Django's default
    # in-memory test database shares one cache between threads, where a contended lock
    # fails at once ("database table is locked") instead of waiting out `timeout`.
    DATABASES["default"].setdefault("TEST", {}).setdefault(
        "NAME", os.path.join(os.environ.get("TMPDIR", "/tmp"),
                             f"tessera-test-{os.getpid()}.sqlite3"))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out username
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row

LOGIN_URL = "/review/login/"
LOGIN_REDIRECT_URL = "/review/"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# The product's one stylesheet (cms/static/tessera/) is not an app's: found here.
STATICFILES_DIRS = [BASE_DIR / "cms" / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("TESSERA_MEDIA_ROOT", BASE_DIR / "media"))
# Where readers' mail clients and browsers reach this site: every image `src` Tessera
# assembles is absolute on it (an email has no page to be relative to).
TESSERA_PUBLIC_BASE_URL = os.environ.get("TESSERA_PUBLIC_BASE_URL",
                                         "http://127.0.0.1:8000").strip().rstrip("/")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "tessera@example.invalid")

# Uploads: refuse big bodies before they reach a view.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
TESSERA_IMAGE_MAX_BYTES = env_int("TESSERA_IMAGE_MAX_BYTES", 5 * 1024 * 1024)
TESSERA_IMAGE_MAX_PIXELS = env_int("TESSERA_IMAGE_MAX_PIXELS", 40_000_000)

# Transport security (docs/operations.md, "Security settings"). TESSERA_HTTPS says the site
# is reached over HTTPS (on unless DEBUG); each setting it turns on can be overridden alone.
TESSERA_HTTPS = env_bool("TESSERA_HTTPS", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", TESSERA_HTTPS)
# Load balancers probe health over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31_536_000 if TESSERA_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)
# "X-Forwarded-Proto: https" from the TLS-terminating proxy marks a request as secure; empty
# turns it off (nothing in front, or gunicorn's FORWARDED_ALLOW_IPS already decides it).
_proxy_ssl_header = os.environ.get(
    "DJANGO_SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto: https" if TESSERA_HTTPS else ""
)
if _proxy_ssl_header.strip() and ":" not in _proxy_ssl_header:
    raise ImproperlyConfigured(
        f"DJANGO_SECURE_PROXY_SSL_HEADER must look like 'X-Forwarded-Proto: https' (header: "
        f"value) or be empty, got {_proxy_ssl_header!r}")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.split(":")[0].strip().upper().replace("-", "_"),
     _proxy_ssl_header.split(":", 1)[1].strip())
    if ":" in _proxy_ssl_header else None
)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", TESSERA_HTTPS)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", TESSERA_HTTPS)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # no script of ours reads it: forms carry the token
SESSION_COOKIE_SAMESITE = os.environ.get("DJANGO_COOKIE_SAMESITE", "Lax").strip().capitalize()
if SESSION_COOKIE_SAMESITE not in ("Lax", "Strict"):  # "None" would send them cross-site
    raise ImproperlyConfigured(
        f"DJANGO_COOKIE_SAMESITE must be Lax or Strict, got {SESSION_COOKIE_SAMESITE!r}")
CSRF_COOKIE_SAMESITE = SESSION_COOKIE_SAMESITE
CSRF_FAILURE_VIEW = "approvals.views.csrf_failure"  # refuses with a message; audits it
X_FRAME_OPTIONS = "DENY"  # the review preview, framed by the review page, allows its own origin
SECURE_CONTENT_TYPE_NOSNIFF = True
# Content-Security-Policy on every page (django-csp). One policy string, the same syntax as
# the header; a page that needs another (the review preview) sets its own header.
TESSERA_CSP = os.environ.get(
    "TESSERA_CSP",
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; frame-ancestors 'self'; object-src 'none'; base-uri 'self'",
)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        directive.split()[0]: directive.split()[1:]
        for directive in TESSERA_CSP.split(";") if directive.strip()
    },
}
# Previews show assembled content, whose images are absolute on the public address (which
# may be another origin: a CDN, or a proxy's name): images from there are allowed too.
_public_origin = "{0.scheme}://{0.netloc}".format(urlsplit(TESSERA_PUBLIC_BASE_URL))
_img_src = CONTENT_SECURITY_POLICY["DIRECTIVES"].setdefault("img-src", ["'self'"])
if _public_origin not in _img_src and "https:" not in _img_src:
    _img_src.append(_public_origin)

# Passwords: Django's validators for every password set through a form or the admin.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": env_int("TESSERA_PASSWORD_MIN_LENGTH", 12)}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Sign-in throttling (django-axes) for the admin and review logins: after
# TESSERA_LOGIN_FAILURE_LIMIT wrong passwords for a username, that username is refused (429)
# for TESSERA_LOGIN_LOCKOUT_MINUTES, even with the right password; an administrator can lift
# it earlier (`manage.py axes_reset_username NAME`). Failures are logged, lockouts audited.
AXES_FAILURE_LIMIT = env_int("TESSERA_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("TESSERA_LOGIN_LOCKOUT_MINUTES", 15))
# Per username from one address (behind a proxy that hides client addresses: per username).
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HANDLER = "approvals.signin.AuditedAxesHandler"
AXES_VERBOSE = False

# Celery: eager in-process unless a broker is configured.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "memory://")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", None)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", "CELERY_BROKER_URL" not in os.environ)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
# Redis: a task a worker took but never acknowledged (the worker died: acks_late) goes back to
# the queue after this many seconds. Keep it above the longest task's run time.
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    "unacked_restore_interval": min(10, max(1, CELERY_VISIBILITY_TIMEOUT // 4)),
    "unacked_restore_throttle": 1 if CELERY_VISIBILITY_TIMEOUT < 60 else 10,
}
# A task that lost its database connection (failover, restart, pg_terminate_backend) runs
# again on a fresh one. Tessera's tasks are idempotent (they are acknowledged late anyway).
CELERY_TASK_ANNOTATIONS = {"*": {
    "autoretry_for": (DatabaseOperationalError, DatabaseInterfaceError),
    "retry_backoff": 1, "retry_backoff_max": 30, "retry_jitter": True,
    "retry_kwargs": {"max_retries": 10},
}}
# Celery's Django fixup closes the database connection before and after every task unless
# this is set, whatever DATABASE_CONN_MAX_AGE says: each batch chunk then paid for a new
# PostgreSQL backend with cold caches. Set, the fixup closes only every 1,000 tasks, and
# cms/celery.py applies Django's own rule at each task's start and end instead.
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE: dict = {
    # Approvals: expire versions past their date hourly; warn owners before expiry daily.
    "approvals-expire-due-versions": {"task": "approvals.expire_due_versions", "schedule": 3600.0},
    "approvals-notify-expiring": {"task": "approvals.notify_expiring", "schedule": 86400.0},
    # Review clock (approvals.review_policy): remind, escalate, close overdue rounds hourly.
    "approvals-send-review-reminders": {"task": "approvals.send_review_reminders", "schedule": 3600.0},
    "approvals-escalate-overdue-rounds": {"task": "approvals.escalate_overdue_rounds", "schedule": 3600.0},
    "approvals-close-overdue-rounds": {"task": "approvals.close_overdue_rounds", "schedule": 3600.0},
    # Journeys: pause or reroute recipients silent for a step's no_engagement_for days.
    "journeys-apply-silence": {"task": "journeys.apply_silence", "schedule": 86400.0},
}
# HMAC key of recipient pseudonyms (journeys.models.pseudonymous_id); unset, SECRET_KEY.
# TESSERA_PSEUDONYM_SALT is its former name, still read so deployments keep their pseudonyms.
TESSERA_PSEUDONYM_KEY = (os.environ.get("TESSERA_PSEUDONYM_KEY")
                         or os.environ.get("TESSERA_PSEUDONYM_SALT", "")).strip()
# Audit anchoring (approvals/anchoring.py): a signed checkpoint of the audit chain's head every
# 15 minutes. HMAC key: TESSERA_AUDIT_ANCHOR_KEY; unset, one derived from SECRET_KEY.
TESSERA_AUDIT_ANCHOR_KEY = os.environ.get("TESSERA_AUDIT_ANCHOR_KEY", "").strip()
CELERY_BEAT_SCHEDULE["approvals-anchor-audit-chain"] = {
    "task": "approvals.anchor_audit_chain", "schedule": 15 * 60.0,
}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "cms.api.schema.ErrorAwareAutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "cms.api.auth.ChannelTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_PARSER_CLASSES": ["cms.api.parsers.GuardedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["cms.api.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "cms.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["cms.api.auth.ChannelTokenRateThrottle"],
    # Per channel token unless the token sets its own rate_limit.
    "DEFAULT_THROTTLE_RATES": {"channel_token": os.environ.get("TESSERA_TOKEN_RATE", "1200/min")},
}

# The cache all web processes share (the per-token request rate is counted here, so N
# workers do not give a token N times its limit): Redis when REDIS_URL, or a redis://
# CELERY_BROKER_URL, names one (the services profile); otherwise files in
# TESSERA_CACHE_DIR, which every process of one machine shares (the embedded profile).
# Derived from the broker, it is the next Redis database: clearing the cache must never
# drop the broker's queues.


def _next_redis_database(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    number = parts.path.strip("/")
    database = (int(number) + 1) % 16 if number.isdigit() else 1
    return urlunsplit(parts._replace(path=f"/{database}"))


_REDIS_URL = os.environ.get("REDIS_URL") or (
    _next_redis_database(CELERY_BROKER_URL)
    if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "")
CACHES = {"default": (
    {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _REDIS_URL,
     "KEY_PREFIX": "tessera"}
    if _REDIS_URL else
    {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
     "LOCATION": os.environ.get("TESSERA_CACHE_DIR") or str(BASE_DIR / "var" / "cache")}
)}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tessera API",
    "DESCRIPTION": "Compliant, personalised content for pharma channels.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}
# Batch assembly: recipients and results are purged this long after the job (or at once
# when the results have been fetched).
TESSERA_BATCH_RETENTION_HOURS = env_int("TESSERA_BATCH_RETENTION_HOURS", 24)
TESSERA_BATCH_MAX_RECIPIENTS = 10_000
TESSERA_BATCH_CHUNK_SIZE = env_int("TESSERA_BATCH_CHUNK_SIZE", 200)
CELERY_BEAT_SCHEDULE["delivery-purge-batch-jobs"] = {
    "task": "delivery.tasks.purge_batch_jobs", "schedule": 15 * 60,
}
# A job with no progress for this long has lost chunk messages (e.g. a Redis restart
# without persistence); beat re-enqueues its unfinished chunks every minute.
TESSERA_BATCH_STALL_SECONDS = env_int("TESSERA_BATCH_STALL_SECONDS", 120)
CELERY_BEAT_SCHEDULE["delivery-requeue-stalled-batch-chunks"] = {
    "task": "delivery.tasks.requeue_stalled_batch_chunks", "schedule": 60.0,
}
CELERY_BEAT_SCHEDULE["orchestration-tick"] = {"task": "orchestration.tick", "schedule": 60.0}
# Analytics (docs/analytics.md): rollups every minute; raw engagement events older than
# TESSERA_EVENT_RETENTION_DAYS are deleted daily (rollups kept); cells of fewer than
# TESSERA_MIN_COHORT recipients are shown as "< N" everywhere.
TESSERA_EVENT_RETENTION_DAYS = env_int("TESSERA_EVENT_RETENTION_DAYS", 400)
TESSERA_MIN_COHORT = env_int("TESSERA_MIN_COHORT", 5)
CELERY_BEAT_SCHEDULE["analytics-roll-up"] = {"task": "analytics.roll_up", "schedule": 60.0}
CELERY_BEAT_SCHEDULE["analytics-purge-raw-events"] = {
    "task": "analytics.purge_raw_events", "schedule": 86400.0,
}
# Withdrawal/expiry webhooks: attempts, first retry delay (doubling each time), timeout.
TESSERA_WEBHOOK_MAX_ATTEMPTS = env_int("TESSERA_WEBHOOK_MAX_ATTEMPTS", 8)
TESSERA_WEBHOOK_BACKOFF_SECONDS = env_int("TESSERA_WEBHOOK_BACKOFF_SECONDS", 30)
TESSERA_WEBHOOK_TIMEOUT_SECONDS = env_int("TESSERA_WEBHOOK_TIMEOUT_SECONDS", 10)
# Plain http to loopback receivers: the test suite's only (cms/outbound.py); never from env.
TESSERA_WEBHOOK_ALLOW_LOOPBACK = False

# Logs: JSON lines (TESSERA_LOG_FORMAT=json, the default under gunicorn and `make serve`) or
# plain lines (development); request ids on every line, recipient data redacted (cms/logging.py).
LOG_LEVEL = os.environ.get("TESSERA_LOG_LEVEL", "INFO")
LOG_FORMAT = os.environ.get("TESSERA_LOG_FORMAT", "plain")
LOGGING = logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL)
# Celery workers log through the same handler and format instead of their own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Tessera business settings.
TESSERA_APPROVAL_VALIDITY_DAYS = env_int("TESSERA_APPROVAL_VALIDITY_DAYS", 365)
TESSERA_EXPIRY_NOTICE_DAYS = env_int("TESSERA_EXPIRY_NOTICE_DAYS", 30)
TESSERA_SIGNING_IDLE_SECONDS = env_int("TESSERA_SIGNING_IDLE_SECONDS", 15 * 60)
TESSERA_SIGNING_MAX_FAILURES = 5
# Second factor (TOTP, recovery codes) for people who sign: MLR role holders and superusers
# open no signing form until this session passed it (approvals/second_factor.py). On unless
# DEBUG, so `make run`'s demo reviewers sign with their password alone.
TESSERA_SECOND_FACTOR_REQUIRED = env_bool("TESSERA_SECOND_FACTOR_REQUIRED", not DEBUG)
# The issuer an authenticator app shows next to the account.
OTP_TOTP_ISSUER = os.environ.get("TESSERA_OTP_ISSUER", "Tessera")
# The admin lists people's devices (to remove a lost one) but never shows their secrets.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
