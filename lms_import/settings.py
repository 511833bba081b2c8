"""The one settings module. Every deploy choice comes from an environment variable.

Zero-setup defaults (a SQLite file and a filesystem broker under ./var) make the
run command work on a fresh machine; production and the test suite set
DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis).
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import environ
from django.core.exceptions import ImproperlyConfigured

# Variables are read with django-environ: env.bool is true for 1/true/yes/on (and y/ok, or any non-zero
# number), env.list splits on commas, env.db_url parses DATABASE_URL.
env = environ.Env()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env.str("LMS_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Read without django-environ on purpose: it takes a value starting with "$" for the name of another variable,
# and Django's generated keys may start with "$" (the default key would then be used without a word).
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    # A key everyone can read signs everyone's sessions: only a development server (DEBUG) may start without one.
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it to a long random value in production "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))'); `make run` keeps a generated one in "
            "var/secret-key; a development server may set DJANGO_DEBUG=1 instead."
        )
    SECRET_KEY = "django-insecure-development-only-key-for-DJANGO_DEBUG"
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "import_export",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our own static files (/api/docs/)
    "credits",
    "courses",
    "enrollments",
    "lms_import",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "lms_import.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "lms_import.middleware.RejectControlCharactersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a login refused for too many failures into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# django-axes first: it refuses a login from a locked-out client before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "lms_import.urls"
WSGI_APPLICATION = "lms_import.wsgi.application"

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

# The default path is quoted: the URL parser would read a "+" in it as a space.
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{quote(str(VAR_DIR / 'db.sqlite3'))}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # Web, worker and heartbeat share one file. Write-ahead logging: readers never wait for a writer, nor a
    # writer for readers. A transaction takes the write lock when it begins (IMMEDIATE), so that a writer
    # waits its turn (up to the timeout) instead of failing when another wrote in the meantime. An apply holds
    # the write lock only for its last seconds (lms_import/importer/run.py: StagingSink).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=30,
        transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    )
if env.str("DATABASE_TEST_NAME", default=""):
    DATABASES["default"]["TEST"] = {"NAME": env.str("DATABASE_TEST_NAME")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("LMS_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
MEDIA_ROOT = Path(env.str("LMS_MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media-not-served/"  # uploads are private; they are streamed through views
# Uploads and error reports go through Django's storage API: a directory shared by web and workers (MEDIA_ROOT), or
# with IMPORT_STORAGE=s3 an S3-compatible bucket (django-storages), for machines that share no disk.
IMPORT_STORAGE = env.str("IMPORT_STORAGE", default="filesystem")
if IMPORT_STORAGE == "s3":
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "location": env.str("AWS_LOCATION", default=""),  # a key prefix inside the bucket
            "addressing_style": env.str("AWS_S3_ADDRESSING_STYLE", default="") or None,
            "default_acl": None,  # private: the bucket's own policy applies
            "file_overwrite": False,  # names are random anyway; never replace another job's file
            # The credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or boto3's usual chain.
        },
    }
elif IMPORT_STORAGE == "filesystem":
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
else:
    raise ImproperlyConfigured(f"IMPORT_STORAGE is {IMPORT_STORAGE!r}; it must be 'filesystem' or 's3'.")
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/import/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Production behind HTTPS (README, "Production settings"; `manage.py check --deploy` passes with them).
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
# Behind a proxy that ends TLS: the header it sets to "https" (e.g. HTTP_X_FORWARDED_PROTO), so that Django knows
# the request was secure. Set it only when the proxy always sets (or strips) that header.
if env.str("DJANGO_SECURE_PROXY_SSL_HEADER", default=""):
    SECURE_PROXY_SSL_HEADER = (env.str("DJANGO_SECURE_PROXY_SSL_HEADER"), "https")
# Every page's scripts and styles are files of this site: no inline script, style or event handler runs
# (lms_import/middleware.py sends it; Django 5.2 has no CSP of its own).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

# Login throttling (django-axes): LOGIN_FAILURE_LIMIT failed logins for one username from one address lock that
# pair out for LOGIN_COOLOFF_MINUTES (every further try restarts the wait); each lockout is an AuditEvent.
# The address is REMOTE_ADDR: behind a reverse proxy every client has the proxy's, so a lockout then holds the
# username from everywhere until the cool-off ends (or `manage.py axes_reset_username NAME`).
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# --- The importer -----------------------------------------------------------
IMPORT_MAX_UPLOAD_BYTES = env.int("IMPORT_MAX_UPLOAD_BYTES", default=200 * 1024 * 1024)
IMPORT_MAX_ROWS = env.int("IMPORT_MAX_ROWS", default=2_000_000)
# A workbook is read whole into memory (python-calamine: about 90 bytes a cell): 8 MB of .xlsx is about 100k
# rows of the template's width, which an import reads within its 300 MB. Larger sheets go as CSV.
IMPORT_MAX_WORKBOOK_BYTES = env.int("IMPORT_MAX_WORKBOOK_BYTES", default=8_000_000)
# Columns a file may have: a header of millions of unknown columns must not pin a worker.
IMPORT_MAX_COLUMNS = env.int("IMPORT_MAX_COLUMNS", default=200)
# Characters of text one batch holds at most, whatever its rows' width (memory per batch).
IMPORT_BATCH_BYTES = env.int("IMPORT_BATCH_BYTES", default=4_000_000)
IMPORT_BATCH_ROWS = env.int("IMPORT_BATCH_ROWS", default=2500)
IMPORT_MAX_STORED_ERRORS = env.int("IMPORT_MAX_STORED_ERRORS", default=1000)
IMPORT_CONFIRM_THRESHOLD = env.int("IMPORT_CONFIRM_THRESHOLD", default=1000)
# On PostgreSQL an apply checks and plans in a producer process while the lock holder writes; off, one process
# does both (the same results, slower: the differential tests compare the two).
IMPORT_PRODUCER_PROCESS = env.bool("IMPORT_PRODUCER_PROCESS", default=True)
# The plain reference form of every rule instead of the fast one (lms_import/importer/fast.py): the same findings
# and records, slower; the differential tests run both.
IMPORT_REFERENCE_RULES = env.bool("IMPORT_REFERENCE_RULES", default=False)
IMPORT_LOCK_LEASE_SECONDS = env.int("IMPORT_LOCK_LEASE_SECONDS", default=120)
IMPORT_HEARTBEAT_SECONDS = env.int("IMPORT_HEARTBEAT_SECONDS", default=5)
# The periodic check (Celery beat) that ends jobs whose worker is gone: a few heartbeats apart.
IMPORT_SWEEP_SECONDS = env.int("IMPORT_SWEEP_SECONDS", default=15)
# A confirmed import that finds another one writing tries again after a heartbeat, then twice as long each time,
# up to this (kept under the broker's visibility timeout below: a task waiting longer would be delivered twice).
IMPORT_LOCK_RETRY_SECONDS = env.int("IMPORT_LOCK_RETRY_SECONDS", default=30)
# Stored uploads and error reports of finished jobs are deleted after this many days (the jobs stay).
IMPORT_RETENTION_DAYS = env.int("IMPORT_RETENTION_DAYS", default=90)
# Uploads and reports hold personal data: readable by the owner and its group only.
FILE_UPLOAD_PERMISSIONS = 0o640
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o750
# Upload fields beyond this go to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- Integrations (SPEC §12): the API, notifications, the inbox ---------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",  # Authorization: Token KEY
        "rest_framework.authentication.SessionAuthentication",  # a logged-in browser (with its CSRF token)
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env.int("IMPORT_API_PAGE_SIZE", default=25),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "lms_import.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Course record importer API",
    "DESCRIPTION": "Upload course record files, follow their validation, confirm, cancel or revert imports (SPEC §12).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",  # the assets of drf-spectacular-sidecar, served by whitenoise: no CDN
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Mail: EMAIL_URL (smtp://user:pass@host:587, smtp+tls://…, smtp+ssl://…, consolemail://, filemail:///path…);
# the default prints mails on the console (the run command's log).
vars().update(
    {key: value for key, value in env.email_url("EMAIL_URL", default="consolemail://").items() if key != "OPTIONS"}
)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Course record importer <importer@localhost>")
# Where the links in notifications point: the address people open the site at.
LMS_BASE_URL = env.str("LMS_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Besides the uploader, who hears when a job needs confirmation, succeeds, fails or is found lost.
IMPORT_NOTIFY_EMAILS = env.list("IMPORT_NOTIFY_EMAILS", default=[])
IMPORT_WEBHOOK_URL = env.str("IMPORT_WEBHOOK_URL", default="")
IMPORT_WEBHOOK_SECRET = env.str("IMPORT_WEBHOOK_SECRET", default="")
IMPORT_WEBHOOK_TIMEOUT_SECONDS = env.int("IMPORT_WEBHOOK_TIMEOUT_SECONDS", default=10)
# A receiver that is down is tried again after 1, 2, 4… times this, up to 10 minutes apart, this many times.
IMPORT_WEBHOOK_RETRY_SECONDS = env.int("IMPORT_WEBHOOK_RETRY_SECONDS", default=30)
IMPORT_WEBHOOK_RETRIES = env.int("IMPORT_WEBHOOK_RETRIES", default=10)

# The inbox: files dropped in IMPORT_INBOX_DIR/<external_course_id>/ or IMPORT_INBOX_DIR/_global/ (off when unset).
IMPORT_INBOX_DIR = env.str("IMPORT_INBOX_DIR", default="")
IMPORT_INBOX_SECONDS = env.int("IMPORT_INBOX_SECONDS", default=30)
IMPORT_INBOX_USER = env.str("IMPORT_INBOX_USER", default="inbox")
IMPORT_INBOX_AUTO_CONFIRM = env.str("IMPORT_INBOX_AUTO_CONFIRM", default="when_clean")
if IMPORT_INBOX_AUTO_CONFIRM not in ("never", "when_clean"):
    raise ImproperlyConfigured(
        f"IMPORT_INBOX_AUTO_CONFIRM is {IMPORT_INBOX_AUTO_CONFIRM!r}; it must be 'never' or 'when_clean'."
    )

# --- Celery -----------------------------------------------------------------
# Without CELERY_BROKER_URL the broker is a folder on disk: no server needed.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = VAR_DIR / "broker"
    for _folder in ("out", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        # The exchange tables (celery.exchange, celery.pidbox.exchange); kombu's default is ./control.
        "control_folder": str(_broker_dir / "control"),
    }
else:
    _visibility_timeout = env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": _visibility_timeout,
        # Kombu's Redis transport hands back the unacknowledged tasks of a dead worker in a sweep every
        # unacked_restore_interval seconds (default 10) that scans Redis only every unacked_restore_throttle-th time
        # (default 10): about 100 s, whatever the timeout. Scan every time, a fifth of the timeout apart (1–10 s),
        # so that a task comes back within about the timeout.
        "unacked_restore_interval": max(1, min(10, _visibility_timeout // 5)),
        "unacked_restore_throttle": 1,
    }
    IMPORT_LOCK_RETRY_SECONDS = max(1, min(IMPORT_LOCK_RETRY_SECONDS, _visibility_timeout // 2))
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True  # a killed worker's task is redelivered; the job state makes it idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=3 * 3600)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery beat (the Procfile's `beat`, `celery -A lms_import beat` in production: one per site) sends the sweep;
# a sweep no worker took before the next one is dropped, so none pile up while workers are down.
CELERY_BEAT_SCHEDULE = {
    "sweep-import-jobs": {
        "task": "lms_import.sweep_import_jobs",
        "schedule": IMPORT_SWEEP_SECONDS,
        "options": {"expires": IMPORT_SWEEP_SECONDS},
    },
    "purge-import-files": {"task": "lms_import.purge_import_files", "schedule": 24 * 3600},
}
if IMPORT_INBOX_DIR:
    CELERY_BEAT_SCHEDULE["scan-import-inbox"] = {
        "task": "lms_import.scan_import_inbox",
        "schedule": IMPORT_INBOX_SECONDS,
        "options": {"expires": IMPORT_INBOX_SECONDS},
    }
CELERY_BEAT_SCHEDULE_FILENAME = env.str("CELERY_BEAT_SCHEDULE_FILENAME", default=str(VAR_DIR / "celerybeat-schedule"))
try:
    Path(CELERY_BEAT_SCHEDULE_FILENAME).parent.mkdir(parents=True, exist_ok=True)
except OSError:  # a read-only checkout: beat says so itself, the web and workers need no schedule
    pass

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
    "loggers": {"lms_import": {"level": env.str("LMS_LOG_LEVEL", default="INFO"), "propagate": True}},
}
