"""The browser workflow on a real worker: upload → progress → preview → Import → result (SPEC §6–§8)."""

import csv
import io
import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from credits.models import CreditAward
from enrollments.models import Enrollment, PendingRecord
from lms_import.models import AuditEvent, ImportJob
from tests.browser.conftest import screenshot
from tests.conftest import HEADER, csv_text, make_learner

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def upload(page, live_url, path, *, course=None, importer=None, skip_invalid=False, create_accounts=False):
    """Fill in the upload form on /import/course-records/ the way an admin does, and press Upload."""
    page.goto(f"{live_url}/import/")
    page.get_by_role("link", name="Course record import").first.click()
    page.get_by_label("CSV file").set_input_files(str(path))
    if importer:
        page.get_by_label("Importer").select_option(label=importer)
    if course:
        page.get_by_label("Course", exact=True).select_option(course)
    if skip_invalid:
        page.get_by_label("Skip invalid rows").check()
    if create_accounts:
        page.get_by_label("Create accounts for unknown learners").check()
    page.get_by_role("button", name="Upload").click()


def job_shown(page) -> ImportJob:
    pk = int(re.search(r"/import/jobs/(\d+)/", page.url).group(1))
    return ImportJob.objects.get(pk=pk)


def test_upload_preview_import_result(live_url, worker, browser_page, login, admin_user, course, learner, tmp_path):
    page = browser_page
    make_learner("L-2", "james@example.org", "James", "Chen")
    path = tmp_path / "card101.csv"
    path.write_text(
        csv_text(
            [
                ["L-1", "maria@example.org", "Maria", "Garcia", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "2.00"],
                ["L-1", "maria@example.org", "Maria", "Garcia", "2026-09-01", "1", "2026-09-14", "ancc", "2.00"],
                ["L-2", "james@example.org", "James", "Chen", "2026-09-02", "0", "", "", ""],
                ["L-9", "noor@example.org", "Noor", "Haddad", "2026-09-03", "0", "", "", ""],
            ]
        )
    )
    login(page, admin_user)

    upload(page, live_url, path, course="CARD101")

    expect(page.get_by_role("heading", name="Preview")).to_be_visible()
    counts = page.locator("#counts")
    expect(counts.locator("div", has_text="Rows").first).to_contain_text("4")
    expect(counts.locator("div", has_text="Enrollments")).to_contain_text("2")
    expect(counts.locator("div", has_text="Credits")).to_contain_text("2")
    expect(counts.locator("div", has_text="holding table")).to_contain_text("1")
    expect(page.locator("#warnings")).to_contain_text("W_PENDING_LEARNERS")
    expect(page.locator("#warnings")).to_contain_text("holding table")  # the explanation
    assert Enrollment.objects.count() == 0  # the preview writes nothing

    page.get_by_role("button", name="Import").click()

    expect(page.get_by_role("heading", name="Result")).to_be_visible()
    expect(page.locator("#result")).to_have_text(
        "Imported: 2 enrollments and 2 credit awards created. "
        "1 row waits in the holding table for its learner's account."
    )
    job = job_shown(page)
    assert job.status == "succeeded" and job.created_by == admin_user
    assert Enrollment.objects.filter(import_job=job).count() == 2
    assert CreditAward.objects.count() == 2
    assert PendingRecord.objects.get().email == "noor@example.org"
    expect(page.get_by_role("link", name="Revert import")).to_have_attribute("href", f"/import/jobs/{job.pk}/revert/")

    page.get_by_role("link", name="History").click()
    expect(page.locator("table.jobs")).to_contain_text("card101.csv")
    expect(page.locator("table.jobs")).to_contain_text("Succeeded")
    page.get_by_role("link", name="Holding").click()
    expect(page.locator("table.holding")).to_contain_text("noor@example.org")
    assert AuditEvent.objects.filter(job=job, action="confirm", actor=admin_user).exists()


def test_error_preview_lists_every_error_and_the_report_downloads(
    live_url, worker, browser_page, login, staff_user, course, learner, tmp_path
):
    page = browser_page
    path = tmp_path / "card101_with_errors.csv"
    path.write_text(
        csv_text(
            [
                ["L-1", "maria@example.org", "Maria", "Garcia", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "2.00"],
                ["L-2002", "not-an-email", "Ana", "Silva", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.00"],
                ["L-2003", "ravi@example.org", "Ravi", "Iyer", "2026-09-01", "0", "", "ama_pra_1", "1.00"],
                ["L-2004", "olga@example.org", "Olga", "Novak", "2026-09-01", "1", "9/14/2026", "ama_pra_1", "1.00"],
                [
                    '=HYPERLINK("http://evil")',
                    "eve@example.org",
                    "Eve",
                    "M",
                    "2026-09-01",
                    "1",
                    "2026-09-14",
                    "ama_pra_1",
                    "9.00",
                ],
                ["L-2007", "lee@example.org", "Lee", "Kim", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"],
            ]
        )
    )
    login(page, staff_user)

    upload(page, live_url, path, course="CARD101", skip_invalid=True)

    expect(page.get_by_role("heading", name="Preview")).to_be_visible()
    errors = page.locator("table.errors tbody tr")
    expect(errors).to_have_count(4)
    expect(errors.nth(0)).to_contain_text("3")
    expect(errors.nth(0)).to_contain_text("E_EMAIL_INVALID")
    expect(errors.nth(0)).to_contain_text("external_email")
    expect(errors.nth(0)).to_contain_text("not-an-email")
    expect(errors.filter(has_text="E_CREDIT_ON_INCOMPLETE")).to_contain_text("4")
    expect(errors.filter(has_text="E_DATE_INVALID")).to_contain_text("9/14/2026")
    expect(errors.filter(has_text="E_CREDITS_OVER_MAX")).to_contain_text("9.00")
    expect(page.locator("#errors")).to_contain_text("4 invalid rows will be skipped")
    expect(page.locator("#warnings")).to_contain_text("W_PENDING_LEARNERS")
    expect(page.get_by_role("button", name="Import")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel")).to_be_visible()
    expect(page.get_by_role("link", name="Unlock")).to_have_count(0)  # import staff never see Unlock
    screenshot(page, "preview")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download error report").click()
    download = download_info.value
    job = job_shown(page)
    assert download.suggested_filename == f"import-{job.pk}-errors.csv"
    report = list(csv.reader(io.StringIO(open(download.path(), encoding="utf-8-sig").read())))
    assert report[0] == HEADER + ["_line", "_codes", "_messages"]  # the file's columns, then why
    assert [(r[9], r[10]) for r in report[1:]] == [
        ("3", "E_EMAIL_INVALID"),
        ("4", "E_CREDIT_ON_INCOMPLETE"),
        ("5", "E_DATE_INVALID"),
        ("6", "E_CREDITS_OVER_MAX"),
    ]
    assert report[4][0] == '\'=HYPERLINK("http://evil")'  # the original row, neutralised for spreadsheets

    page.get_by_role("button", name="Import").click()

    expect(page.get_by_role("heading", name="Result")).to_be_visible()
    expect(page.locator("#result")).to_have_text(
        "Imported: 1 enrollment and 1 credit award created. 1 row waits in the holding table for its learner's "
        "account. 4 invalid rows were skipped: they are in the error report."
    )
    expect(page.locator("#errors")).to_contain_text("4 invalid rows were skipped")
    expect(page.get_by_role("link", name="Revert import")).to_have_count(0)  # superusers only
    assert list(Enrollment.objects.values_list("user__username", flat=True)) == [learner.username]


def test_auto_complete_needs_the_acknowledgment(
    live_url, worker, browser_page, login, admin_user, auto_course, learner, tmp_path
):
    page = browser_page
    path = tmp_path / "eth200.csv"
    path.write_text(csv_text([["L-1", "", "", "", "2026-09-01", "0", "", "", ""]]))
    login(page, admin_user)
    page.goto(f"{live_url}/courses/ETH200/import/")
    expect(page.get_by_label("Course", exact=True)).to_have_value("ETH200")
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_role("button", name="Upload").click()

    expect(page.get_by_role("heading", name="Preview")).to_be_visible()
    warning = page.locator("#warnings li", has_text="W_AUTO_COMPLETE")
    expect(warning).to_contain_text("1 enrollment (L-1)")
    expect(warning).to_contain_text("1.00 ama_pra_1, 1.50 ancc")
    expect(warning).to_contain_text("required course object")
    checkbox = page.get_by_label("I understand")
    expect(checkbox).not_to_be_checked()

    page.get_by_role("button", name="Import").click()  # without ticking it

    # The refusal is said at the checkbox itself, not in a message at the top of the page.
    expect(page.locator("#decision .ack #ack-error")).to_contain_text("Tick the acknowledgment")
    assert job_shown(page).status == "validated" and Enrollment.objects.count() == 0

    page.get_by_label("I understand").check()
    page.get_by_role("button", name="Import").click()

    expect(page.get_by_role("heading", name="Result")).to_be_visible()
    enrollment = Enrollment.objects.get(user=learner, course=auto_course)
    assert enrollment.complete  # the completion engine did what the warning said
    assert sorted(enrollment.credit_awards.values_list("credit_type__machine_name", "credits")) == [
        ("ama_pra_1", Decimal("1.00")),
        ("ancc", Decimal("1.50")),
    ]
    assert job_shown(page).allow_auto_complete


def test_cancel_writes_nothing(live_url, worker, browser_page, login, staff_user, course, learner, tmp_path):
    page = browser_page
    path = tmp_path / "card101.csv"
    path.write_text(csv_text([["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "2.00"]]))
    login(page, staff_user)
    upload(page, live_url, path, course="CARD101")
    expect(page.get_by_role("heading", name="Preview")).to_be_visible()

    page.get_by_role("button", name="Cancel").click()

    expect(page.locator(".status").first).to_have_text("Cancelled")
    expect(page.get_by_role("button", name="Import")).to_have_count(0)
    assert job_shown(page).status == "cancelled" and Enrollment.objects.count() == 0


@pytest.mark.parametrize("javascript", [True, False], ids=["with-javascript", "without-javascript"])
def test_the_job_page_follows_the_worker_by_itself(
    javascript, live_url, new_page, login, start_worker, staff_user, course, learner, tmp_path
):
    page = new_page(java_script_enabled=javascript)
    path = tmp_path / "card101.csv"
    path.write_text(csv_text([["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "2.00"]]))
    login(page, staff_user)
    upload(page, live_url, path, course="CARD101")  # no worker yet: the job waits in the queue

    expect(page.get_by_role("heading", name="Waiting for a worker to check the file…")).to_be_visible()
    expect(page.locator("#progress-bar")).to_be_visible()
    start_worker()

    # With JavaScript the page polls and reloads itself; without, it refreshes every 2 s.
    expect(page.get_by_role("heading", name="Preview")).to_be_visible()
    expect(page.locator("#counts")).to_contain_text("Valid rows")


def test_refused_uploads_say_why_and_write_nothing(
    live_url, browser_page, login, staff_user, course, tmp_path, settings
):
    settings.IMPORT_MAX_UPLOAD_BYTES = 1_000_000
    page = browser_page
    login(page, staff_user)
    too_large = tmp_path / "everything.csv"
    too_large.write_text(csv_text([["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "2.00"]] * 60_000))
    workbook = tmp_path / "records.docx"  # a zip, but no workbook
    workbook.write_bytes(b"PK\x03\x04" + bytes(2000))

    upload(page, live_url, too_large, course="CARD101")
    expect(page.locator(".field-errors")).to_contain_text("F_TOO_LARGE")
    expect(page.locator(".field-errors")).to_contain_text("the limit is 1,000,000. Split it into smaller files.")
    expect(page.get_by_label("Course", exact=True)).to_have_value("CARD101")  # the choices are kept

    upload(page, live_url, workbook, course="CARD101")
    expect(page.locator(".field-errors")).to_contain_text("F_NOT_CSV: records.docx is a zip archive")
    expect(page.locator(".field-errors")).to_contain_text("'Excel Workbook' or 'CSV UTF-8 (Comma delimited)'")

    page.goto(f"{live_url}/import/course-records/")
    page.get_by_label("CSV file").set_input_files(str(workbook))
    page.context.clear_cookies(name="csrftoken")  # as when the form outlived its token
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("heading")).to_contain_text("The form could not be verified (CSRF)")
    expect(page.get_by_role("alert")).to_contain_text("Nothing was uploaded or changed.")

    assert not ImportJob.objects.exists()
    assert not list(settings.MEDIA_ROOT.rglob("*.*"))
