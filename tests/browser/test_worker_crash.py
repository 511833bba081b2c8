"""A worker killed in the middle of an import, and a task delivered twice: nothing is ever applied twice.

(tests/browser/test_jobs_end_workers.py has the rest of the story: the waiting import, Redis handing the
task back within the visibility timeout, and Celery beat's sweep.)

The worker is a real `celery worker` on Redis and PostgreSQL; SIGKILL takes its whole process group,
as a crashed machine would. The lease is short (3 s) in the worker and in the live server alike.
"""

import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from credits.models import CreditAward
from enrollments.models import Enrollment, LearnerProfile, PendingRecord
from lms_import.importer.lock import lock_state
from lms_import.models import ImportJob
from lms_import.selectors import job_progress
from lms_import.services import import_job_confirm, import_job_create
from lms_import.tasks import apply_import_job, validate_import_job
from tests.browser.test_import_flow import job_shown, upload
from tests.conftest import csv_text

LEASE_SECONDS = 3
ROWS = 80_000  # an apply of several seconds: the test kills its worker mid-way
User = get_user_model()


@pytest.fixture
def short_lease(settings):
    settings.IMPORT_LOCK_LEASE_SECONDS = LEASE_SECONDS
    settings.IMPORT_HEARTBEAT_SECONDS = 1
    settings.IMPORT_BATCH_ROWS = 1000


def big_file(tmp_path, rows: int = ROWS):
    """rows learners without an account, each completing CARD101 with one credit."""
    path = tmp_path / "card101-big.csv"
    path.write_text(
        csv_text(
            [
                [f"N-{n:06d}", f"learner{n}@example.org", "Pat", f"Doe{n}", "2026-09-01", "1", "2026-09-14"]
                + ["ama_pra_1", "2.00"]
                for n in range(rows)
            ]
        )
    )
    return path


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def written() -> dict:
    return {
        "enrollments": Enrollment.objects.count(),
        "credits": CreditAward.objects.count(),
        "pending": PendingRecord.objects.count(),
        "profiles": LearnerProfile.objects.count(),
        "accounts": User.objects.filter(username__startswith="learner").count(),
    }


def confirm_accounts(page) -> None:
    """Above IMPORT_CONFIRM_THRESHOLD accounts, Import wants their number typed."""
    page.get_by_label(f"Type {ROWS:,}, the number of accounts to create, to confirm").fill(str(ROWS))


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_import_leaves_nothing_is_found_lost_and_the_file_imports_once(
    short_lease, live_url, start_worker, browser_page, login, admin_user, course, tmp_path
):
    page = browser_page
    path = big_file(tmp_path)
    first = start_worker()
    login(page, admin_user)
    upload(page, live_url, path, course="CARD101", create_accounts=True)
    expect(page.get_by_role("heading", name="Preview")).to_be_visible(timeout=60_000)
    expect(page.locator("#counts")).to_contain_text(f"{ROWS:,}")
    killed_job = job_shown(page)

    confirm_accounts(page)
    page.get_by_role("button", name="Import").click()

    # The progress bar moves while the worker imports, without reloading the page.
    expect(page.get_by_role("heading", name="Importing…")).to_be_visible(timeout=30_000)
    page.evaluate("window.sameDocument = true")
    wait_until(lambda: page.locator("#progress-bar").evaluate("bar => bar.value") > 0, 30, "progress on the page")
    assert page.evaluate("window.sameDocument") is True
    killed_job.refresh_from_db()
    assert killed_job.status == "importing" and 0 < job_progress(job=killed_job)[0] < ROWS

    first.kill()

    assert written() == {"enrollments": 0, "credits": 0, "pending": 0, "profiles": 0, "accounts": 0}
    killed_job.refresh_from_db()
    assert killed_job.status == "importing" and lock_state().held

    # Once the lease has passed without a heartbeat, the job page says the job is lost.
    expect(page.locator("#lost")).to_contain_text("This import is lost.", timeout=LEASE_SECONDS * 1000 + 15_000)
    expect(page.locator("#lost")).to_contain_text("Nothing of it was committed.")
    assert lock_state().stale

    # The broker hands the killed task to the next worker; it finds the job lost, ends it and frees the lock.
    second = start_worker(env={"CELERY_VISIBILITY_TIMEOUT": 1})
    found = f"import job {killed_job.pk} is lost (apply; found by its task, delivered again)"
    wait_until(lambda: found in second.log(), 30, f"{found!r} in the new worker's log")
    expect(page.locator("#failure")).to_contain_text("This import failed (LOST).", timeout=15_000)
    expect(page.locator("#failure")).to_contain_text("Nothing of it was committed; upload the file again")
    assert not lock_state().held

    # The same file again: every record exactly once.
    upload(page, live_url, path, course="CARD101", create_accounts=True)
    expect(page.get_by_role("heading", name="Preview")).to_be_visible(timeout=60_000)
    confirm_accounts(page)
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("heading", name="Result")).to_be_visible(timeout=90_000)
    expect(page.locator("#counts")).to_contain_text(
        f"Imported: {ROWS:,} enrollments and {ROWS:,} credit awards created."
    )
    assert written() == {"enrollments": ROWS, "credits": ROWS, "pending": 0, "profiles": ROWS, "accounts": ROWS}
    assert Enrollment.objects.values("user").distinct().count() == ROWS
    killed_job.refresh_from_db()
    assert (killed_job.status, killed_job.failure_code) == ("failed", "LOST")  # never revived by the redelivery


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_apply_task_delivered_twice_applies_once(start_worker, admin_user, course, tmp_path, settings):
    settings.IMPORT_HEARTBEAT_SECONDS = 1
    worker = start_worker(concurrency=2)  # both deliveries can run at the same time
    path = big_file(tmp_path, rows=3000)
    with path.open("rb") as f:
        from django.core.files import File

        job = import_job_create(
            user=admin_user, importer="course", course=course, upload=File(f, name=path.name), create_accounts=True
        )
    validate_import_job.delay(job.pk)
    wait_until(lambda: ImportJob.objects.get(pk=job.pk).status == "validated", 60, "validation")

    import_job_confirm(job=job, user=admin_user, typed={"confirm_accounts": 3000})  # queues the apply once …
    apply_import_job.delay(job.pk)  # … and the broker delivers it again

    wait_until(lambda: worker.log().count("lms_import.apply_import_job[") >= 4, 60, "both deliveries to finish")
    wait_until(lambda: ImportJob.objects.get(pk=job.pk).status == "succeeded", 60, "the import")
    results = re.findall(r"apply_import_job\[[^\]]+\] succeeded in [0-9.]+s: '(\w+)'", worker.log())
    assert sorted(results) == ["skipped", "succeeded"], worker.log()

    apply_import_job.delay(job.pk)  # a late redelivery after success
    wait_until(lambda: worker.log().count("lms_import.apply_import_job[") >= 6, 60, "the late delivery")

    assert written() == {"enrollments": 3000, "credits": 3000, "pending": 0, "profiles": 3000, "accounts": 3000}
    assert ImportJob.objects.get(pk=job.pk).created_enrollments == 3000


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_validation_killed_midway_is_run_again_when_its_task_is_redelivered(
    short_lease, start_worker, admin_user, course, tmp_path
):
    from django.core.files import File
    from django.db.models import DateTimeField, ExpressionWrapper, Value
    from django.db.models.functions import Now

    first = start_worker()
    # Big enough that the validation still runs a moment after it started.
    path = big_file(tmp_path, rows=40_000)
    with path.open("rb") as f:
        job = import_job_create(user=admin_user, importer="course", course=course, upload=File(f, name=path.name))
    validate_import_job.delay(job.pk)
    wait_until(lambda: ImportJob.objects.get(pk=job.pk).status == "validating", 60, "the validation to start")
    first.kill()
    assert ImportJob.objects.get(pk=job.pk).status == "validating"
    lease_ago = ExpressionWrapper(Now() - Value(timedelta(seconds=LEASE_SECONDS)), output_field=DateTimeField())
    wait_until(lambda: ImportJob.objects.filter(pk=job.pk, heartbeat_at__lt=lease_ago).exists(), 30, "a silent lease")

    start_worker(env={"CELERY_VISIBILITY_TIMEOUT": 1})  # the broker delivers the killed task again

    job = wait_until(
        lambda: ImportJob.objects.filter(pk=job.pk, status="validated").first(), 60, "the validation to run again"
    )
    assert (job.rows_total, job.rows_valid, job.validate_attempts) == (40_000, 40_000, 2)
