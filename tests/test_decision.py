"""The job page's decision (issue 11, items 1–3): findings by code, the typed confirmation, truthful statuses.

The validation runs for real (the file checked against the database); the web and the API are asked as a browser
and an API client would ask them.
"""

import re

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from rest_framework.test import APIClient

from lms_import.models import AuditEvent, FindingGroup, ImportJob
from lms_import.selectors import StatusDisplay, job_findings_summary, job_status_display
from lms_import.services import import_job_create, import_job_validate

pytestmark = pytest.mark.django_db


def row(n: int, *, email: str = "", credit_type: str = "ama_pra_1") -> list[str]:
    email = email or f"learner{n}@example.org"
    return [f"X-{n}", email, "Ana", "Silva", "2026-03-02", "1", "2026-03-20", credit_type, "1.00"]


@pytest.fixture
def staff(db):
    user = User.objects.create(username="importer", email="importer@example.org")
    user.user_permissions.add(Permission.objects.get(codename="import_course_records"))
    return user


def validated(user, course, path, **options) -> ImportJob:
    return import_job_validate(job=import_job_create(user=user, importer="course", course=course, path=path, **options))


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


@pytest.fixture
def mixed_file(write_csv):
    """40 rows: 12 ask for acpe, which CARD101 does not offer; 5 have distinct bad e-mails; 23 are valid."""
    rows = [row(n, credit_type="acpe") for n in range(12)]
    rows += [row(n, email=f"not-an-email-{n}") for n in range(12, 17)]
    rows += [row(n) for n in range(17, 40)]
    return write_csv(rows)


def test_the_findings_are_summed_by_code_and_repeated_value_in_a_few_queries(
    staff, course, mixed_file, django_assert_max_num_queries
):
    job = validated(staff, course, mixed_file, skip_invalid=True)
    assert job.rows_invalid == 17 and FindingGroup.objects.filter(job=job).count() == 6  # 1 acpe + 5 e-mails

    with django_assert_max_num_queries(3):
        summary = job_findings_summary(job=job)

    assert [(entry.code, entry.count) for entry in summary] == [
        ("E_CREDIT_TYPE_NOT_OFFERED", 12),
        ("E_EMAIL_INVALID", 5),
    ]
    acpe, emails = summary
    assert (acpe.single.column, acpe.single.value, acpe.example.line) == ("credit_type", "acpe", 2)
    assert emails.single is None and emails.repeats == []  # five different values: none repeats
    assert emails.example.line == 14 and emails.example.value == "not-an-email-12"

    page = Client()
    page.force_login(staff)
    shown = text_of(page.get(f"/import/jobs/{job.pk}/").content.decode())
    assert "12 × E_CREDIT_TYPE_NOT_OFFERED, credit_type = acpe" in shown
    assert "5 × E_EMAIL_INVALID For example, line 14 (external_email):" in shown
    # The decision comes before the summary, and the summary before the paged list of errors.
    assert shown.index("Import this file?") < shown.index("What is wrong, by code") < shown.index("Errors (17)")
    assert "Import 23 rows, skip 17" in shown
    assert "all of it is written" not in shown.lower()
    assert "The 23 valid rows are written in one transaction, or none of them is. The 17 invalid rows are skipped" in (
        shown
    )


def test_a_file_that_cannot_be_imported_as_it_is_needs_fixes(staff, course, mixed_file):
    job = validated(staff, course, mixed_file)  # invalid rows, and no "Skip invalid rows"

    assert job.status == "validated"  # SPEC's stored status is untouched
    assert job_status_display(job=job).label == "Needs fixes"
    page = Client()
    page.force_login(staff)
    html = page.get(f"/import/jobs/{job.pk}/").content.decode()
    assert 'class="status status-validated tone-error">Needs fixes<' in html
    assert 'value="import"' not in html  # no Import button at all
    history = page.get("/import/course-records/history/").content.decode()
    assert ">Needs fixes<" in history and "would create" in history


def test_statuses_say_what_happened(staff, course):
    make = {"created_by": staff, "course": course, "importer": "course", "original_filename": "f.csv"}
    partial = ImportJob(status="succeeded", rows_skipped=27_887, created_enrollments=92_113, **make)
    nothing = ImportJob(status="succeeded", **make)
    clean = ImportJob(status="succeeded", created_enrollments=3, **make)
    failed = ImportJob(status="failed", **make)

    assert job_status_display(job=partial) == StatusDisplay("Imported, 27,887 skipped", "partial")
    assert job_status_display(job=nothing) == StatusDisplay("Imported nothing", "partial")
    assert job_status_display(job=clean) == StatusDisplay("Succeeded", "ok")
    assert job_status_display(job=failed).label == "Failed, nothing imported"


def test_the_web_asks_for_the_number_above_the_threshold(staff, course, mixed_file, settings):
    settings.IMPORT_CONFIRM_THRESHOLD = 10
    job = validated(staff, course, mixed_file, skip_invalid=True)
    page = Client()
    page.force_login(staff)
    url = f"/import/jobs/{job.pk}/"
    assert "Type 17, the number of rows to skip, to confirm" in page.get(url).content.decode()

    missing = page.post(url, {"action": "import"})
    wrong = page.post(url, {"action": "import", "confirm_skipped": "71"})

    assert missing.status_code == wrong.status_code == 400
    assert "E_CONFIRM_COUNT: Type 17 (the number of rows to skip) to confirm" in missing.content.decode()
    assert "You typed 71, but this import has 17 rows to skip" in wrong.content.decode()
    assert 'id="confirm_skipped-error"' in wrong.content.decode()  # said at the field
    job.refresh_from_db()
    assert job.status == "validated" and not AuditEvent.objects.filter(action="confirm").exists()

    right = page.post(url, {"action": "import", "confirm_skipped": "17"})

    assert right.status_code == 302
    job.refresh_from_db()
    assert job.status == "queued"
    assert AuditEvent.objects.get(action="confirm").details["typed"]["confirm_skipped"] == 17


def test_below_the_threshold_import_needs_no_number(staff, course, mixed_file):
    job = validated(staff, course, mixed_file, skip_invalid=True)  # 17 skipped, threshold 1,000
    page = Client()
    page.force_login(staff)
    assert "the number of rows to skip" not in page.get(f"/import/jobs/{job.pk}/").content.decode()

    assert page.post(f"/import/jobs/{job.pk}/", {"action": "import"}).status_code == 302
    job.refresh_from_db()
    assert job.status == "queued"


def test_the_api_asks_for_the_same_numbers(staff, course, write_csv, settings):
    settings.IMPORT_CONFIRM_THRESHOLD = 2
    path = write_csv(
        [row(n, credit_type="acpe") for n in range(4)] + [row(n, email=f"new{n}@example.org") for n in range(4, 9)]
    )
    job = validated(staff, course, path, skip_invalid=True, create_accounts=True)
    assert (job.rows_invalid, job.created_accounts) == (4, 5)
    api = APIClient()
    api.force_authenticate(staff)
    url = f"/api/v1/imports/{job.pk}/confirm/"
    shown = api.get(f"/api/v1/imports/{job.pk}/").json()
    assert shown["confirm_counts"] == {"confirm_skipped": 4, "confirm_accounts": 5}
    assert shown["status_label"] == "Validated" and shown["status"] == "validated"

    missing = api.post(url, {"confirm_skipped": 4}, format="json")
    wrong = api.post(url, {"confirm_skipped": 4, "confirm_accounts": 50}, format="json")

    assert missing.status_code == wrong.status_code == 409
    assert missing.json()["code"] == "E_CONFIRM_COUNT"
    assert missing.json()["errors"][0]["column"] == "confirm_accounts"
    assert wrong.json()["errors"][0] | {"message": ""} == {
        "line": None,
        "code": "E_CONFIRM_COUNT",
        "column": "confirm_accounts",
        "value": "50",
        "message": "",
    }
    assert ImportJob.objects.get(pk=job.pk).status == "validated"

    right = api.post(url, {"confirm_skipped": 4, "confirm_accounts": 5}, format="json")

    assert right.status_code == 202 and right.json()["status"] == "queued"


# -- small things that add up (issue 11, item 9) ---------------------------------------------------------------
def test_a_refused_upload_keeps_the_choices_and_says_to_choose_the_file_again(staff, course):
    page = Client()
    page.force_login(staff)
    sent = {"importer": "course", "course": "CARD101", "skip_invalid": "on", "create_accounts": "on"}

    html = page.post("/import/course-records/", sent | {"csv_file": ""}).content.decode()  # no file chosen

    assert "choose the file again" in html
    assert re.search(r'<option value="CARD101" selected>', html)
    assert re.search(r'name="skip_invalid"[^>]*checked', html) and re.search(
        r'name="create_accounts"[^>]*checked', html
    )
    assert not ImportJob.objects.exists()


def test_the_acknowledgment_error_is_at_the_checkbox(staff, course):
    warning = {"code": "W_AUTO_COMPLETE", "message": "m", "count": 1, "explanation": "e"}
    job = ImportJob.objects.create(
        created_by=staff, course=course, original_filename="f.csv", status="validated", rows_total=1, rows_valid=1,
        warnings=[warning],
    )  # fmt: skip
    page = Client()
    page.force_login(staff)

    html = page.post(f"/import/jobs/{job.pk}/", {"action": "import"}).content.decode()

    ack = html[html.index('<div class="field check ack has-error">') :]
    ack = ack[: ack.index("</div>")]
    assert 'aria-describedby="ack-error"' in ack and "Tick the acknowledgment to import" in ack
    job.refresh_from_db()
    assert job.status == "validated"


def test_an_unlocked_job_does_not_say_it_was_imported(staff, course):
    from django.utils import timezone

    now = timezone.now()
    job = ImportJob.objects.create(
        created_by=staff, course=course, original_filename="f.csv", status="failed", failure_code="UNLOCKED",
        failure_message="Unlocked by admin.", apply_started_at=now - timezone.timedelta(seconds=175.9),
        apply_finished_at=now,
    )  # fmt: skip
    page = Client()
    page.force_login(staff)

    shown = text_of(page.get(f"/import/jobs/{job.pk}/").content.decode())

    assert "Imported in" not in shown
    assert "Import stopped after175.9 s, nothing imported" in shown  # <dt>…</dt><dd>…</dd>
    assert "Failed, nothing imported" in shown


def test_the_admin_names_the_product(db):
    admin = User.objects.create(username="root", is_staff=True, is_superuser=True)
    page = Client()
    page.force_login(admin)

    html = page.get("/admin/").content.decode()

    assert "Course record importer: administration" in html and "Django administration" not in html
    assert "<title>Courses, credits, records and imports | Course record importer admin</title>" in html
