"""Issue 11, items 4 and 5 in real Chromium, with real Celery workers on Redis and PostgreSQL, at real scale.

- A worker SIGKILLed mid-import: well before the lease ends, every page that shows the job or the lock says
  "no heartbeat for N s — may be hung" (never "Live", never "the import goes on"), with Unlock for site admins;
  the lock is still live by the lease, so unlocking it asks for a reason and the box.
- The revert of an import of 100,000 records: the typed number, then a progress bar while a worker reverts.

The import itself is made through the services (as the API and the inbox do), not the upload page, so that these
tests follow the liveness and the revert, not the confirmation of imports.
"""

import re

import pytest
from django.core.files import File
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from enrollments.models import Enrollment, PendingRecord
from lms_import.importer.lock import lock_state
from lms_import.models import AuditEvent, ImportJob, RevertRun
from lms_import.selectors import job_progress
from lms_import.services import import_job_confirm, import_job_create
from lms_import.tasks import validate_import_job
from tests.browser.test_worker_crash import big_file, wait_until, written
from tests.conftest import run_cli

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ROWS = 100_000


def test_a_killed_worker_is_said_to_be_silent_everywhere_and_its_live_lock_unlocks_with_a_reason(
    settings, live_url, start_worker, browser_page, login, admin_user, course, tmp_path
):
    settings.IMPORT_LOCK_LEASE_SECONDS = 120  # the job stays "live" by the lease for the whole test
    settings.IMPORT_HEARTBEAT_SECONDS = 1  # quiet after 6 s without one
    settings.IMPORT_BATCH_ROWS = 1000
    worker = start_worker()
    with big_file(tmp_path, rows=ROWS).open("rb") as f:
        job = import_job_create(
            user=admin_user, importer="course", course=course, upload=File(f, name="card101-big.csv")
        )
    validate_import_job.delay(job.pk)
    wait_until(lambda: ImportJob.objects.get(pk=job.pk).status == "validated", 120, "the validation")
    page = browser_page
    login(page, admin_user)
    import_job_confirm(job=ImportJob.objects.get(pk=job.pk), user=admin_user)
    page.goto(f"{live_url}/import/jobs/{job.pk}/")
    wait_until(lambda: 0 < job_progress(job=ImportJob.objects.get(pk=job.pk))[0] < ROWS, 60, "the apply to write")
    expect(page.locator("#live")).to_contain_text("Live: last heartbeat")

    worker.kill()

    quiet = page.locator("#quiet")
    expect(quiet).to_contain_text("No heartbeat for", timeout=20_000)
    expect(quiet).to_contain_text("s — may be hung.")
    expect(quiet.get_by_role("link", name="Unlock")).to_have_attribute("href", "/import/course-records/unlock/")
    expect(page.locator("main")).not_to_contain_text("the import goes on")
    expect(page.get_by_role("heading", name="Importing…", exact=True)).to_have_count(0)
    age = int(page.locator("#heartbeat-age").inner_text())
    wait_until(lambda: int(page.locator("#heartbeat-age").inner_text()) > age, 10, "the age to grow on the page")
    state = lock_state()
    assert state.held and not state.stale and state.quiet  # live by the lease, silent by its heartbeat

    page.goto(f"{live_url}/import/")
    expect(page.locator(".lock")).to_contain_text(re.compile(r"no heartbeat for \d+ s — may be hung"))
    expect(page.locator(".lock")).not_to_contain_text("Live")
    expect(page.locator("table.jobs")).to_contain_text(re.compile(r"no heartbeat for \d+ s — may be hung"))
    page.goto(f"{live_url}/import/course-records/history/")
    expect(page.locator("table.jobs")).to_contain_text(re.compile(r"no heartbeat for \d+ s — may be hung"))

    # Unlock: the lock is live by the lease, so it asks for a reason and the box.
    page.goto(f"{live_url}/import/course-records/unlock/")
    page.get_by_role("button", name="Unlock").click()
    expect(page.locator("#reason-error")).to_contain_text("say why you unlock it")
    expect(page.locator("#confirm-live-error")).to_contain_text("Tick the box to confirm")
    assert lock_state().held
    page.get_by_label("Reason (for the audit log)").fill("worker killed; nothing moves")
    page.get_by_label("I understand: this import is still running").check()
    page.get_by_role("button", name="Unlock").click()

    expect(page.locator(".messages")).to_contain_text(f"Unlocked. Import #{job.pk} is marked failed")
    assert not lock_state().held
    assert AuditEvent.objects.get(action="unlock").details["reason"] == "worker killed; nothing moves"
    assert written() == {"enrollments": 0, "credits": 0, "pending": 0, "profiles": 0, "accounts": 0}


def test_reverting_100k_records_asks_for_the_number_and_shows_a_worker_progress(
    settings, live_url, start_worker, browser_page, login, admin_user, course, tmp_path
):
    settings.IMPORT_HEARTBEAT_SECONDS = 1
    code, out, err = run_cli(big_file(tmp_path, rows=ROWS), "--course", "CARD101", "--format", "json")
    assert code == 0, out + err
    job = ImportJob.objects.get(status="succeeded")
    assert PendingRecord.objects.filter(import_job=job).count() == ROWS  # unknown learners: the holding table
    start_worker()
    page = browser_page
    login(page, admin_user)

    page.goto(f"{live_url}/import/jobs/{job.pk}/")
    page.get_by_role("link", name="Revert import").click()
    expect(page.get_by_role("heading", name=f"Revert import #{job.pk}")).to_be_visible()
    expect(page.locator("dl.removed div", has_text="Pending").locator("dd")).to_have_text(str(ROWS))
    typed = page.get_by_label(f"To confirm, type the number {ROWS}")

    typed.fill(str(ROWS - 1))
    page.get_by_role("button", name="Revert import").click()
    expect(page.locator(".messages")).to_contain_text(f"To confirm, type the number {ROWS} in the box.")
    assert not RevertRun.objects.exists() and PendingRecord.objects.count() == ROWS

    page.get_by_label(f"To confirm, type the number {ROWS}").fill(f"{ROWS:,}")  # as written, with its commas
    page.get_by_role("button", name="Revert import").click()

    expect(page.locator(".messages")).to_contain_text(f"The revert of import #{job.pk} is queued")
    seen = []
    while not page.locator(".reverted").count():  # the page refreshes itself every 2 s while the worker reverts
        bar = page.locator("#revert-progress-bar")
        try:
            if bar.count():
                seen.append(bar.evaluate("bar => [bar.getAttribute('value'), bar.max]"))
        except PlaywrightError:  # the page reloaded under the read: read the next one
            pass
        assert len(seen) < 600, seen
        page.wait_for_timeout(100)
    expect(page.locator(".reverted")).to_contain_text("A corrected file can now be imported.")
    assert seen and all(max_ == ROWS for _, max_ in seen)  # the bar counts the job's records
    assert not PendingRecord.objects.exists() and not Enrollment.objects.exists()
    run = RevertRun.objects.get(job=job)
    assert (run.status, run.progress_done, run.progress_total, run.requested_by) == ("done", ROWS, ROWS, admin_user)
    assert AuditEvent.objects.get(action="revert").details["removed"]["pending"] == ROWS
