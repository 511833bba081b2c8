"""Browser-test fixtures: a live server, a real Celery worker process, headless Chromium, logins.

How to use them (any test module under tests/browser/):

    import pytest

    pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

    def test_something(live_url, worker, browser_page, login, admin_user):
        login(browser_page, admin_user)                 # or login(page, "admin", PASSWORD)
        browser_page.goto(live_url + "/import/")
        ...

Fixtures
    live_url        "http://localhost:PORT" of pytest-django's live server (same process, test database)
    worker          a running `celery -A lms_import worker` subprocess bound to the test database, the
                    test's MEDIA_ROOT and the same broker; stopped at teardown. It copies the importer
                    settings (IMPORT_LOCK_LEASE_SECONDS, IMPORT_HEARTBEAT_SECONDS, IMPORT_BATCH_ROWS,
                    IMPORT_MAX_UPLOAD_BYTES, …) as they are when it starts, so change them through the
                    `settings` fixture *before* asking for `worker` (or use `start_worker`).
    start_worker    start_worker(concurrency=1, env={...}) -> Worker: more workers, or one with its own
                    environment; every one is stopped at teardown. Worker.kill() is a SIGKILL of its whole
                    process group (a crashed machine); Worker.log() is its output so far.
    start_beat      start_beat(env={...}) -> Beat: a `celery -A lms_import beat` process (the periodic sweep,
                    every IMPORT_SWEEP_SECONDS) with its schedule file under the test's tmp dir; stopped at
                    teardown. Beat.log() is its output so far.
    browser_page    a fresh Playwright page (own context, downloads accepted) in headless /usr/bin/chromium;
                    on a failed test its screenshot is saved under test-artifacts/. Every page of every test
                    is watched for Content-Security-Policy violations: one the browser reports fails the test
                    (csp_violations(page) lists them so far). Every page of the product's own (not /admin/)
                    is checked with axe-core when it has loaded: an accessibility violation fails the test
                    (axe_violations(page) lists them so far; tests/browser/package.json pins axe-core, which
                    `make test` installs with npm ci)
    new_page        new_page(**context_options) -> another page in a context of its own: a second user
                    at the same time, or java_script_enabled=False
    chromium        the session's Playwright Browser
    login           login(page, user_or_username, password=PASSWORD): logs in through /accounts/login/
    admin_user      a site admin (superuser) "admin"
    staff_user      "importer", holding lms_import.import_course_records
    plain_user      "learner", logged in but without the permission
    PASSWORD        every fixture user's password (import it: `from tests.browser.conftest import PASSWORD`)
    screenshot      screenshot(page, name): saves test-artifacts/<name>.png; with LMS_SCREENSHOTS=1 also
                    docs/screenshots/<name>.png, the README's pictures (a plain function, import it)

The worker is a separate process, so tests using it need `django_db(transaction=True)`; pages are
checked for what a user sees, and the database for what was written.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from tests.conftest import ROOT, database_url

# Playwright's sync API runs an event loop in the test's thread; the ORM calls tests make between
# page actions are still synchronous, so Django's async-safety check must not refuse them.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "browser-test-Pa55word"
ARTIFACTS = ROOT / "test-artifacts"
README_SCREENSHOTS = ROOT / "docs" / "screenshots"
WORKER_READY_SECONDS = 60
VIEWPORT = {"width": 1280, "height": 900}

# Settings a worker must share with the live server to see the same jobs, files and lease.
SHARED_SETTINGS = {
    "IMPORT_LOCK_LEASE_SECONDS": "IMPORT_LOCK_LEASE_SECONDS",
    "IMPORT_HEARTBEAT_SECONDS": "IMPORT_HEARTBEAT_SECONDS",
    "IMPORT_BATCH_ROWS": "IMPORT_BATCH_ROWS",
    "IMPORT_MAX_UPLOAD_BYTES": "IMPORT_MAX_UPLOAD_BYTES",
    "IMPORT_MAX_ROWS": "IMPORT_MAX_ROWS",
    "IMPORT_MAX_STORED_ERRORS": "IMPORT_MAX_STORED_ERRORS",
    "IMPORT_SWEEP_SECONDS": "IMPORT_SWEEP_SECONDS",
    "IMPORT_LOCK_RETRY_SECONDS": "IMPORT_LOCK_RETRY_SECONDS",
    "MEDIA_ROOT": "LMS_MEDIA_ROOT",
    "TIME_ZONE": "LMS_TIME_ZONE",
}


def _require_browser() -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests drive Debian's Chromium. Run `make test` (its "
            f"scripts/services.sh installs it) or `apt-get install chromium`.",
            pytrace=False,
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail(
            "The Python package playwright is missing: run `make install` (it is in requirements.txt).", pytrace=False
        )


# -- the live server ---------------------------------------------------------------------------------
@pytest.fixture
def live_url(live_server) -> str:
    return live_server.url


# -- real Celery workers -----------------------------------------------------------------------------
class Worker:
    """One `celery worker` process group; its output goes to a log file under the test's tmp dir."""

    READY = " ready."

    def __init__(self, env: dict, log_path: Path, concurrency: int):
        self.name = f"test-{uuid.uuid4().hex[:8]}@%h"
        self._start(
            [
                "worker",
                "--loglevel=INFO",
                f"--concurrency={concurrency}",
                "-n",
                self.name,
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
            ],
            env,
            log_path,
        )

    def _start(self, arguments: list[str], env: dict, log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "celery"), "-A", "lms_import", *arguments],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so kill() takes the pool children too
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = WORKER_READY_SECONDS) -> "Worker":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"The Celery process exited with {self.process.returncode}:\n{self.log()}")
            if self.READY in self.log():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"The Celery process was not ready after {timeout} s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once, as a crashed machine would."""
        self._signal_group(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # warm shutdown of the main process, which stops its own pool
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.process.wait(timeout=30)
        self._signal_group(signal.SIGKILL)  # pool children that outlived their parent
        self._log.close()

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass


class Beat(Worker):
    """One `celery beat` process: it sends the sweep every IMPORT_SWEEP_SECONDS (settings.CELERY_BEAT_SCHEDULE)."""

    READY = "beat: Starting..."

    def __init__(self, env: dict, log_path: Path, schedule: Path):
        self._start(["beat", "--loglevel=INFO", f"--schedule={schedule}"], env, log_path)


def worker_environment(extra: dict | None = None) -> dict:
    """The environment of a worker bound to the test database, broker, media root and importer settings."""
    from django.db import connection

    env = dict(os.environ)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env["DJANGO_SETTINGS_MODULE"] = "lms_import.settings"
    env["DATABASE_URL"] = database_url(connection.settings_dict)
    env["CELERY_BROKER_URL"] = django_settings.CELERY_BROKER_URL
    env["CELERY_TASK_ALWAYS_EAGER"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    for setting, variable in SHARED_SETTINGS.items():
        env[variable] = str(getattr(django_settings, setting))
    env.update({key: str(value) for key, value in (extra or {}).items()})
    return env


def broker_purge() -> None:
    """Drop messages left by earlier tests (queued, or unacknowledged by a killed worker)."""
    from lms_import.celery import app

    app.control.purge()
    if django_settings.CELERY_BROKER_URL.startswith("redis"):
        import redis

        redis.Redis.from_url(django_settings.CELERY_BROKER_URL).delete("unacked", "unacked_index", "unacked_mutex")


@pytest.fixture
def start_worker(transactional_db, tmp_path):
    """start_worker(concurrency=1, env=None) -> a ready Worker; all are stopped at teardown."""
    if django_settings.CELERY_BROKER_URL.startswith("filesystem") or django_settings.DATABASES["default"][
        "ENGINE"
    ].endswith("sqlite3"):
        pytest.fail("Worker tests need PostgreSQL and Redis: set DATABASE_URL and CELERY_BROKER_URL (make test does).")
    broker_purge()
    started: list[Worker] = []

    def start(concurrency: int = 1, env: dict | None = None) -> Worker:
        worker = Worker(worker_environment(env), tmp_path / f"worker-{len(started) + 1}.log", concurrency)
        started.append(worker)
        return worker.wait_ready()

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def worker(start_worker) -> Worker:
    return start_worker()


@pytest.fixture
def start_beat(start_worker, tmp_path):
    """start_beat(env=None) -> a running Beat (with the test's database and broker); stopped at teardown."""
    started: list[Beat] = []

    def start(env: dict | None = None) -> Beat:
        beat = Beat(worker_environment(env), tmp_path / f"beat-{len(started) + 1}.log", tmp_path / "beat-schedule")
        started.append(beat)
        return beat.wait_ready()

    yield start
    for beat in started:
        beat.stop()


# -- Chromium ----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def chromium():
    _require_browser()
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    playwright.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.browser_test_failed = report.failed
    return report


@pytest.fixture
def browser_page(new_page):
    return new_page()


@pytest.fixture
def new_page(chromium, request):
    """new_page(**context_options) -> a page in a context of its own (java_script_enabled=False, say)."""
    contexts = []
    violations: list[str] = []
    axe_script = _axe_init_script()
    axe = AxeWatch()

    def open_page(**options):
        context = chromium.new_context(**({"accept_downloads": True, "viewport": VIEWPORT} | options))
        contexts.append(context)
        context.on("console", lambda message: _record_csp_violation(message, violations))
        context.add_init_script(script=axe_script)
        context.on("console", axe.record)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.csp_violations = violations
        page.axe_violations = axe.violations
        return page

    yield open_page
    axe.finish(contexts)
    for number, context in enumerate(contexts):
        _save_failure_screenshot(request, context, number)
        context.close()
    if violations and not getattr(request.node, "browser_test_failed", False):
        pytest.fail("The browser refused what the Content-Security-Policy forbids:\n" + "\n".join(violations))
    if axe.violations and not getattr(request.node, "browser_test_failed", False):
        pytest.fail("axe-core found accessibility violations:\n" + "\n".join(axe.violations))


# What Chromium writes to the console when the Content-Security-Policy blocks something (an inline script, style
# or event handler, a resource from elsewhere).
CSP_VIOLATION = "Content Security Policy"


def _record_csp_violation(message, violations: list[str]) -> None:
    if CSP_VIOLATION in message.text:
        violations.append(f"{message.page.url if message.page else '?'}: {message.text}")


# -- axe-core on every page of the product's own ---------------------------------------------------------
AXE_JS = ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
AXE_VIOLATION = "AXE-VIOLATION "
AXE_START, AXE_DONE = "AXE-START ", "AXE-DONE "
# Runs in every document before the page's own scripts (Playwright's init script, outside the page's CSP): once
# the page has loaded, axe checks it and writes each violation to the console, where the context's listener
# collects it. Django's admin (and the password pages in its templates) is not ours to fix, nor are frames, PDFs
# or other non-HTML documents.
AXE_RUNNER = (
    """
(() => {
  const django = ["/admin/", "/accounts/password_"];  // Django's admin and its admin-styled password pages
  if (window.top !== window || django.some((prefix) => location.pathname.startsWith(prefix))) return;
  window.addEventListener("load", async () => {
    if (document.contentType !== "text/html" || !window.axe) return;
    console.debug("%START%" + location.pathname);
    try {
        const results = await window.axe.run(document, { resultTypes: ["violations"] });
        for (const v of results.violations) {
          const where = v.nodes.slice(0, 5).map((n) => n.target.join(" ")).join(" | ");
          console.error("%AXE%" + location.pathname + location.search + ": " + v.id + " (" + v.impact + "): "
            + v.help + " at " + where);
        }
    } catch (error) {
        console.error("%AXE%" + location.pathname + ": axe-core could not run: " + error);
    } finally {
      console.debug("%DONE%" + location.pathname);
    }
  });
})();
""".replace("%AXE%", AXE_VIOLATION)
    .replace("%START%", AXE_START)
    .replace("%DONE%", AXE_DONE)
)
AXE_FINISH_SECONDS = 10


def _axe_init_script() -> str:
    if not AXE_JS.is_file():
        pytest.fail(
            f"{AXE_JS} is missing: the browser tests check every page with axe-core. Run `make test` (it runs "
            f"`npm ci` in tests/browser/) or `cd tests/browser && npm ci`.",
            pytrace=False,
        )
    return AXE_JS.read_text() + "\n" + AXE_RUNNER


class AxeWatch:
    """What axe-core said in one test's pages: the violations, and how many checks started and finished."""

    def __init__(self):
        self.violations: list[str] = []
        self.started = 0
        self.done = 0

    def record(self, message) -> None:
        text = message.text
        if text.startswith(AXE_VIOLATION):
            self.violations.append(text[len(AXE_VIOLATION) :])
        elif text.startswith(AXE_START):
            self.started += 1
        elif text.startswith(AXE_DONE):
            self.done += 1

    def finish(self, contexts) -> None:
        """Let checks still running on open pages finish (a few seconds at most) before the test's verdict.
        Waiting through Playwright lets it deliver the console messages meanwhile."""
        pages = [page for context in contexts for page in context.pages if not page.is_closed()]
        deadline = time.monotonic() + AXE_FINISH_SECONDS
        while pages and self.done < self.started and time.monotonic() < deadline:
            try:
                pages[0].wait_for_timeout(100)
            except Exception:  # a closed or crashed page has nothing more to say
                return


def axe_violations(page) -> list[str]:
    """The accessibility violations axe-core reported so far, in this test's pages."""
    return list(page.axe_violations)


def csp_violations(page) -> list[str]:
    """The Content-Security-Policy violations the browser reported so far, in this test's pages."""
    return list(page.csp_violations)


def _save_failure_screenshot(request, context, number: int) -> None:
    if not getattr(request.node, "browser_test_failed", False) or not context.pages:
        return
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        context.pages[-1].screenshot(path=str(ARTIFACTS / f"{request.node.name[:110]}-{number}.png"), full_page=True)
    except Exception:  # the page may be gone; the failure itself is what matters
        pass


def screenshot(page, name: str) -> Path:
    """A picture of the page as the user sees it; the README's copies are refreshed with LMS_SCREENSHOTS=1."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("LMS_SCREENSHOTS") == "1":
        README_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(README_SCREENSHOTS / f"{name}.png"), full_page=True)
    return path


# -- users and logging in ----------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Every browser test logs in; a slow key-derivation hash per login would only slow the suite.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _user(username: str, **fields):
    user = get_user_model().objects.create(username=username, email=f"{username}@example.org", **fields)
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def admin_user(transactional_db):
    return _user("admin", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_user(transactional_db):
    user = _user("importer")
    user.user_permissions.add(Permission.objects.get(codename="import_course_records"))
    return user


@pytest.fixture
def plain_user(transactional_db):
    return _user("learner")


@pytest.fixture
def login(live_url):
    """login(page, user_or_username, password=PASSWORD): through the real login form; lands on /import/."""

    def log_in(page, user, password: str = PASSWORD) -> None:
        username = user if isinstance(user, str) else user.get_username()
        page.goto(f"{live_url}/accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_load_state()
        if "/accounts/login/" in page.url:
            raise AssertionError(f"Logging in as {username} failed: {page.inner_text('main')[:500]}")

    return log_in
