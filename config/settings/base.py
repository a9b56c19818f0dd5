"""Base settings, read from the environment.

The defaults give the zero-setup demo: an embedded SQLite file and Celery in eager mode. Set
`DATABASE_URL` (PostgreSQL), `CELERY_BROKER_URL` (Redis or RabbitMQ) and `CACHE_URL` (Redis)
for the real thing.
"""

import datetime as dt
import os
from pathlib import Path
from typing import Any

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean from the environment; accepts 1/0, true/false, yes/no, on/off."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean, got {raw!r}")


def caches_from_url(url: str) -> dict:
    """`CACHES` from `CACHE_URL`: empty → a per-process memory cache (the demo, the tests);
    `redis://` or `rediss://` → Redis, shared by every process (per-key throttling then counts
    once across all workers, and cached charts are computed once)."""
    if not url:
        return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    if url.startswith(("redis://", "rediss://")):
        return {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": url,
                # A cache that stops answering must not hang a request either.
                "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
            }
        }
    scheme = url.split(":", 1)[0]  # not the rest: it may carry a password
    raise ImproperlyConfigured(f"CACHE_URL must be redis:// or rediss://, got {scheme}://…")


def env_list(name: str, default: str) -> list[str]:
    """Read a comma-separated list from the environment."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# A development-only default; production settings refuse to start without a real key.
SECRET_KEY = os.environ.get("SECRET_KEY", "dev-insecure-landlord-key-change-me")
DEBUG = env_bool("DEBUG", True)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# Widgets render through the project's templates, so templates/django/forms/ can override one
# (the select writes its options inline: templates/django/forms/widgets/select.html).
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"

INSTALLED_APPS = [
    "config.apps.OperatorAdminConfig",  # django.contrib.admin with the operator admin site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.forms",  # its widget templates, for FORM_RENDERER below
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "common",
    "clusters",
    "leasing",
    "billing",
    "reclaim",
    "webhooks",
]

MIDDLEWARE = [
    # First: under /api/ it answers a refused Host or an oversized body in the API's error
    # format before any other middleware asks for either, and marks responses no-store.
    "common.api.middleware.ApiBoundaryMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        # Health checks make errors stop the moment a restarted PostgreSQL is back.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Bounded waits: a server that accepts TCP but never answers must not hang a worker.
    # connect_timeout covers new connections, statement_timeout covers queries the server runs,
    # and keepalives + tcp_user_timeout cover an already-open connection that went silent.
    statement_timeout_ms = int(os.environ.get("DB_STATEMENT_TIMEOUT_MS", "30000"))
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "connect_timeout": int(os.environ.get("DB_CONNECT_TIMEOUT_S", "5")),
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "tcp_user_timeout": int(os.environ.get("DB_TCP_USER_TIMEOUT_MS", "30000")),
            "options": f"-c statement_timeout={statement_timeout_ms}",
        }
    )
else:
    # SQLite: wait for the writer lock instead of failing at once under concurrent requests.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20})

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The database refuses tampering with issued billing documents and number series, `flush`
# included (billing migration 0005). Only the test settings let `flush` through, since Django's
# test runner empties every table between transactional tests (common/tamper.py).
FLUSH_BYPASSES_TAMPER_GUARDS = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# One date style everywhere (config/formats/en/formats.py).
FORMAT_MODULE_PATH = ["config.formats"]

# --- Operator logins ---------------------------------------------------------------------------
# django-axes counts failed logins per username and client address and refuses that pair for
# a cool-off once the limit is reached; its backend must come first. The tenant API
# authenticates API keys, not Django logins, so it is never counted or locked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = dt.timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Behind N reverse proxies the client is the N-th address from the right of X-Forwarded-For;
# with 0 (direct) it is REMOTE_ADDR. Wrong here, every client shares the proxy's address.
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
AXES_CLIENT_IP_CALLABLE = "common.access.client_ip"
# django-otp: staff may have TOTP devices (managed in the admin). With OTP_REQUIRED the admin
# and the operator pages need a session verified by one; production settings require it.
OTP_REQUIRED = env_bool("OTP_REQUIRED", False)
OTP_TOTP_ISSUER = "Landlord"

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
LOGIN_URL = "admin:login"

# --- REST framework ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["common.api.parsers.StrictJSONParser"],
    # The client address DRF's throttles count by (refused keys): the same proxy count as the
    # login lockout, so a forged X-Forwarded-For cannot buy a fresh counter.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "common.api.pagination.BoundedCursorPagination",
    "EXCEPTION_HANDLER": "common.api.exceptions.api_exception_handler",
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Landlord tenant API",
    "DESCRIPTION": "Lease GPU capacity: listings, leases, notices, invoices, webhooks.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The operator API has its own document (/api/ops/schema/).
    "PREPROCESSING_HOOKS": ["config.ops_schema.exclude_ops_paths"],
    # Several fields are named `status` (or `available_actions`) with different choice sets;
    # name each enum after its domain so the schema is stable and readable.
    "ENUM_NAME_OVERRIDES": {
        "LeaseStatusEnum": "leasing.choices.LeaseStatus",
        "LineStatusEnum": "leasing.choices.LineStatus",
        "NoticeStatusEnum": "leasing.choices.NoticeStatus",
        "InvoiceStatusEnum": "billing.choices.InvoiceStatus",
        "CreditNoteStatusEnum": "billing.choices.CreditNoteStatus",
        "InvoiceKindEnum": "billing.choices.InvoiceKind",
        "CreditNoteKindEnum": "billing.choices.CreditNoteKind",
        "LeaseActionEnum": "leasing.api.selectors.LeaseAction.ALL",
        "NoticeActionEnum": "leasing.api.selectors.NoticeAction.ALL",
        "IncidentCategoryEnum": "clusters.choices.IncidentCategory",
        "AcceptanceTestEnum": "clusters.acceptance.TEST_NAMES",
        "AcceptanceRuleEnum": "clusters.acceptance.RULES",
        "AcceptanceSourceEnum": "leasing.acceptance.SOURCES",
        "AcceptanceStateEnum": "leasing.acceptance.AcceptanceState.ALL",
        "NodeHealthEnum": "leasing.api.acceptance.HEALTH_CHOICES",
        "MaintenanceKindEnum": "clusters.choices.MaintenanceKind",
        "MaintenanceStatusEnum": "clusters.choices.MaintenanceStatus",
        "MaintenanceScopeEnum": "clusters.choices.MaintenanceScope",
        "MaintenanceCategoryEnum": "clusters.choices.MaintenanceCategory",
        "DeferralStatusEnum": "leasing.choices.DeferralStatus",
        "StatementLineKindEnum": "billing.choices.StatementKind",
    },
}

CACHES = caches_from_url(os.environ.get("CACHE_URL", ""))

# --- Celery -----------------------------------------------------------------------------------
# No broker configured: run tasks eagerly in-process, so the demo needs nothing but Python.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL == ""
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# At-least-once delivery: ack after the task ran, re-queue if the worker process is lost, and
# let each worker hold one message at a time so a killed worker strands at most one.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Longer than the longest task, or Redis redelivers a task that is still running.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_TIME_LIMIT = 900
CELERY_TASK_SOFT_TIME_LIMIT = 840
CELERY_TIMEZONE = "UTC"
# Domain-event deliveries (`common.events`) go to this queue when set, so a consumer's work (a
# credit note after a notice) never waits behind a long fan-out such as the daily billing run;
# some worker must then consume it (`celery worker -Q celery,<queue>`). Empty: the default queue.
EVENTS_QUEUE = os.environ.get("CELERY_EVENTS_QUEUE", "")
# The issuing entity printed on every invoice and credit note (docs/rules/receivables.md).
BILLING_ISSUER = {
    "legal_name": os.environ.get("BILLING_ISSUER_NAME", "Landlord Compute Leasing, Inc."),
    "address": os.environ.get(
        "BILLING_ISSUER_ADDRESS", "100 Example Street, Chicago, IL 60601, USA"
    ),
    "tax_id": os.environ.get("BILLING_ISSUER_TAX_ID", "EIN 00-0000000"),
    "remittance": os.environ.get(
        "BILLING_ISSUER_REMITTANCE",
        "Wire to Example Bank, ABA 000000000, account 0000000000; quote the invoice number.",
    ),
}

# E-mail (dunning reminders): the console in the demo, SMTP from the environment in production.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "billing@landlord.example")

CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Every job catches up on what it missed and is safe to run twice (docs/architecture.md, "Jobs").
# django-celery-beat copies these into the database, where operators can see and edit them.
CELERY_BEAT_SCHEDULE = {
    "lease-boundaries": {
        "task": "leasing.process_boundaries",
        "schedule": crontab(minute="*/5"),
    },
    "billing-daily": {
        "task": "billing.daily_billing_scan",
        "schedule": crontab(hour=0, minute=10),
    },
    "billing-service-credits": {
        "task": "billing.service_credits_scan",
        "schedule": crontab(hour=0, minute=20),
    },
    "billing-overdue": {
        "task": "billing.mark_overdue",
        "schedule": crontab(hour=0, minute=30),
    },
    "dunning": {
        "task": "billing.send_reminders",
        "schedule": crontab(hour=9, minute=0),
    },
    "revenue-recognition": {
        "task": "billing.recognize_revenue",
        "schedule": crontab(hour=0, minute=40),
    },
    "reclaim-rescore": {
        "task": "leasing.rescore_reclaim_decisions",
        "schedule": crontab(hour=2, minute=0),
    },
    "domain-events": {
        "task": "common.sweep_events",
        "schedule": crontab(minute="*"),
    },
    "webhook-retries": {
        "task": "leasing.deliver_due_webhooks",
        "schedule": crontab(minute="*"),
    },
    "maintenance-windows": {
        "task": "clusters.advance_maintenance_windows",
        "schedule": crontab(minute="*/5"),
    },
    "idempotency-purge": {
        "task": "leasing.purge_idempotency_records",
        "schedule": crontab(minute=17),
    },
}
DJANGO_CELERY_BEAT_TZ_AWARE = True

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # Not its start-up banner in every command; failed logins and lockouts still show.
    "loggers": {"axes.apps": {"level": "WARNING"}},
}
