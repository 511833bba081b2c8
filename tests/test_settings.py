"""The settings module read from the environment (django-environ): names, defaults and the URLs we rely on."""

import importlib.util
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured

from .conftest import ROOT

# Variables the suite's own environment sets; each test starts from none of them.
VARIABLES = (
    "DATABASE_URL",
    "DATABASE_CONN_MAX_AGE",
    "DATABASE_TEST_NAME",
    "CELERY_BROKER_URL",
    "CELERY_TASK_ALWAYS_EAGER",
    "CELERY_VISIBILITY_TIMEOUT",
    "DJANGO_SECRET_KEY",
    "DJANGO_DEBUG",
    "DJANGO_ALLOWED_HOSTS",
    "DJANGO_SECURE_COOKIES",
    "DJANGO_SECURE_SSL_REDIRECT",
    "DJANGO_SECURE_HSTS_SECONDS",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "DJANGO_SECURE_HSTS_PRELOAD",
    "DJANGO_SECURE_PROXY_SSL_HEADER",
    "LOGIN_FAILURE_LIMIT",
    "LOGIN_COOLOFF_MINUTES",
    "IMPORT_LOCK_LEASE_SECONDS",
    "IMPORT_PRODUCER_PROCESS",
    "LMS_MEDIA_ROOT",
    "IMPORT_HEARTBEAT_SECONDS",
    "IMPORT_SWEEP_SECONDS",
    "IMPORT_LOCK_RETRY_SECONDS",
    "CELERY_BEAT_SCHEDULE_FILENAME",
    "EMAIL_URL",
    "IMPORT_STORAGE",
    "IMPORT_INBOX_DIR",
    "IMPORT_INBOX_SECONDS",
    "IMPORT_INBOX_AUTO_CONFIRM",
    "IMPORT_NOTIFY_EMAILS",
    "IMPORT_WEBHOOK_URL",
    "AWS_STORAGE_BUCKET_NAME",
    "AWS_S3_ENDPOINT_URL",
)


@pytest.fixture
def load_settings(tmp_path, monkeypatch):
    """load_settings(**environment) -> a fresh copy of lms_import/settings.py read with that environment (and a
    secret key, which every start without DJANGO_DEBUG needs; test_a_secret_key_is_required goes without)."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LMS_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DJANGO_SECRET_KEY", "a-key-for-these-tests")

    def load(**environment):
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        spec = importlib.util.spec_from_file_location("settings_under_test", ROOT / "lms_import" / "settings.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


def test_zero_setup_defaults(load_settings, tmp_path):
    settings = load_settings()
    database = settings.DATABASES["default"]
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert database["NAME"] == str(tmp_path / "var" / "db.sqlite3")
    assert database["OPTIONS"]["timeout"] == 30 and database["CONN_MAX_AGE"] == 0
    assert (
        database["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
        and "journal_mode=WAL" in database["OPTIONS"]["init_command"]
    )
    assert settings.CELERY_BROKER_URL == "filesystem://"
    # Every folder of the filesystem broker is under var/broker, kombu's exchange tables included (not ./control).
    broker = tmp_path / "var" / "broker"
    assert {key: value for key, value in settings.CELERY_BROKER_TRANSPORT_OPTIONS.items() if "folder" in key} == {
        "data_folder_in": str(broker / "out"),
        "data_folder_out": str(broker / "out"),
        "processed_folder": str(broker / "processed"),
        "control_folder": str(broker / "control"),
    }
    assert (broker / "control").is_dir()
    assert settings.DEBUG is False and settings.CELERY_TASK_ALWAYS_EAGER is False
    assert settings.ALLOWED_HOSTS == ["localhost", "127.0.0.1", "[::1]"]
    assert settings.IMPORT_LOCK_LEASE_SECONDS == 120  # on SQLite as on PostgreSQL: its heartbeat is written
    assert settings.IMPORT_PRODUCER_PROCESS is True
    assert settings.MEDIA_ROOT == tmp_path / "var" / "media"


def test_the_default_sqlite_path_may_contain_a_plus(load_settings, tmp_path, monkeypatch):
    monkeypatch.setenv("LMS_VAR_DIR", str(tmp_path / "a+b c"))
    assert load_settings().DATABASES["default"]["NAME"] == str(tmp_path / "a+b c" / "db.sqlite3")


def test_an_in_memory_sqlite_url_as_the_makefile_uses_it(load_settings):
    database = load_settings(DATABASE_URL="sqlite:///:memory:").DATABASES["default"]
    assert database["ENGINE"] == "django.db.backends.sqlite3" and database["NAME"] == ":memory:"


def test_postgresql_and_redis(load_settings):
    settings = load_settings(
        DATABASE_URL="postgres://lms:s%40cret@db.example.org:5433/lms?sslmode=require",
        DATABASE_CONN_MAX_AGE="60",
        DATABASE_TEST_NAME="test_lms_ci",
        CELERY_BROKER_URL="redis://redis.example.org:6379/0",
        CELERY_VISIBILITY_TIMEOUT="7200",
        IMPORT_PRODUCER_PROCESS="0",
    )
    database = settings.DATABASES["default"]
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["PORT"], database["NAME"]) == ("db.example.org", 5433, "lms")
    assert (database["USER"], database["PASSWORD"]) == ("lms", "s@cret")
    assert database["OPTIONS"] == {"sslmode": "require"}
    assert database["CONN_MAX_AGE"] == 60 and database["TEST"] == {"NAME": "test_lms_ci"}
    # A dead worker's task comes back within about the timeout: Kombu scans for it every 10 s, every time.
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS == {
        "visibility_timeout": 7200,
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
    }
    assert settings.IMPORT_LOCK_LEASE_SECONDS == 120  # not on SQLite
    assert settings.IMPORT_PRODUCER_PROCESS is False


def test_booleans_and_lists(load_settings):
    settings = load_settings(
        DJANGO_DEBUG="yes", DJANGO_SECURE_COOKIES="1", DJANGO_ALLOWED_HOSTS="lms.example.org,,www.example.org"
    )
    assert settings.DEBUG is True and settings.SESSION_COOKIE_SECURE is True and settings.CSRF_COOKIE_SECURE
    assert settings.ALLOWED_HOSTS == ["lms.example.org", "www.example.org"]


def test_a_secret_key_starting_with_a_dollar_is_taken_as_it_is(load_settings):
    assert load_settings(DJANGO_SECRET_KEY="$k3y-from-get_random_secret_key").SECRET_KEY == (
        "$k3y-from-get_random_secret_key"
    )


def test_a_short_visibility_timeout_is_swept_for_often_and_bounds_the_lock_retry(load_settings):
    settings = load_settings(CELERY_BROKER_URL="redis://127.0.0.1:6379/0", CELERY_VISIBILITY_TIMEOUT="6")
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    assert (options["unacked_restore_interval"], options["unacked_restore_throttle"]) == (1, 1)
    # A waiting import's next try (a countdown the worker holds unacknowledged) must come before the timeout.
    assert settings.IMPORT_LOCK_RETRY_SECONDS == 3


def test_beat_sweeps_every_few_heartbeats_with_its_schedule_under_var(load_settings, tmp_path):
    settings = load_settings()
    assert settings.CELERY_BEAT_SCHEDULE == {
        "sweep-import-jobs": {
            "task": "lms_import.sweep_import_jobs",
            "schedule": 15,
            "options": {"expires": 15},
        },
        "purge-import-files": {"task": "lms_import.purge_import_files", "schedule": 86400},
    }
    assert settings.CELERY_BEAT_SCHEDULE_FILENAME == str(tmp_path / "var" / "celerybeat-schedule")
    assert load_settings(IMPORT_SWEEP_SECONDS="5").CELERY_BEAT_SCHEDULE["sweep-import-jobs"]["schedule"] == 5


def test_a_secret_key_is_required_unless_debug(load_settings, monkeypatch):
    monkeypatch.delenv("DJANGO_SECRET_KEY")
    with pytest.raises(ImproperlyConfigured, match="DJANGO_SECRET_KEY is not set"):
        load_settings()
    with pytest.raises(ImproperlyConfigured, match="DJANGO_SECRET_KEY is not set"):
        load_settings(DJANGO_SECRET_KEY="")

    development = load_settings(DJANGO_DEBUG="1", DJANGO_SECRET_KEY="")
    assert development.DEBUG is True and development.SECRET_KEY.startswith("django-insecure-")


def test_https_settings_are_off_by_default_and_read_from_the_environment(load_settings):
    default = load_settings()
    assert (default.SECURE_SSL_REDIRECT, default.SECURE_HSTS_SECONDS, default.SESSION_COOKIE_SECURE) == (
        False,
        0,
        False,
    )
    assert not hasattr(default, "SECURE_PROXY_SSL_HEADER")

    production = load_settings(
        DJANGO_SECURE_SSL_REDIRECT="1",
        DJANGO_SECURE_HSTS_SECONDS="31536000",
        DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS="1",
        DJANGO_SECURE_HSTS_PRELOAD="1",
        DJANGO_SECURE_COOKIES="1",
        DJANGO_SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO",
    )
    assert production.SECURE_SSL_REDIRECT is True and production.SECURE_HSTS_SECONDS == 31536000
    assert production.SECURE_HSTS_INCLUDE_SUBDOMAINS is True and production.SECURE_HSTS_PRELOAD is True
    assert production.SESSION_COOKIE_SECURE is True and production.CSRF_COOKIE_SECURE is True
    assert production.SECURE_PROXY_SSL_HEADER == ("HTTP_X_FORWARDED_PROTO", "https")


def test_login_throttling_settings(load_settings):
    default = load_settings()
    assert default.AXES_FAILURE_LIMIT == 5 and default.AXES_COOLOFF_TIME == timedelta(minutes=15)
    assert default.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    changed = load_settings(LOGIN_FAILURE_LIMIT="10", LOGIN_COOLOFF_MINUTES="60")
    assert changed.AXES_FAILURE_LIMIT == 10 and changed.AXES_COOLOFF_TIME == timedelta(hours=1)


# -- integrations (SPEC §12) ----------------------------------------------------------------------------------
def test_integrations_default_to_the_console_a_shared_directory_and_no_inbox(load_settings):
    settings = load_settings()
    assert settings.EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend"
    assert settings.STORAGES["default"] == {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    assert settings.IMPORT_NOTIFY_EMAILS == [] and settings.IMPORT_WEBHOOK_URL == ""
    assert "scan-import-inbox" not in settings.CELERY_BEAT_SCHEDULE
    assert settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] == [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ]


def test_mail_a_bucket_and_an_inbox_from_the_environment(load_settings, tmp_path):
    settings = load_settings(
        EMAIL_URL="smtp+tls://mailer:s%40cret@smtp.example.org:587",
        IMPORT_NOTIFY_EMAILS="cme@example.org,ops@example.org",
        IMPORT_STORAGE="s3",
        AWS_STORAGE_BUCKET_NAME="lms-imports",
        AWS_S3_ENDPOINT_URL="https://s3.example.org",
        IMPORT_INBOX_DIR=str(tmp_path / "inbox"),
        IMPORT_INBOX_SECONDS="10",
        IMPORT_INBOX_AUTO_CONFIRM="never",
    )
    assert settings.EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend"
    assert (settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS) == ("smtp.example.org", 587, True)
    assert (settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD) == ("mailer", "s@cret")
    assert settings.IMPORT_NOTIFY_EMAILS == ["cme@example.org", "ops@example.org"]
    storage = settings.STORAGES["default"]
    assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
    assert storage["OPTIONS"]["bucket_name"] == "lms-imports"
    assert storage["OPTIONS"]["endpoint_url"] == "https://s3.example.org"
    assert storage["OPTIONS"]["default_acl"] is None and storage["OPTIONS"]["file_overwrite"] is False
    assert settings.CELERY_BEAT_SCHEDULE["scan-import-inbox"] == {
        "task": "lms_import.scan_import_inbox",
        "schedule": 10,
        "options": {"expires": 10},
    }
    assert settings.IMPORT_INBOX_AUTO_CONFIRM == "never"


@pytest.mark.parametrize(("name", "value"), [("IMPORT_STORAGE", "nfs"), ("IMPORT_INBOX_AUTO_CONFIRM", "always")])
def test_a_choice_that_does_not_exist_stops_the_start(load_settings, name, value):
    with pytest.raises(ImproperlyConfigured, match=name):
        load_settings(**{name: value})
