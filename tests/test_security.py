"""Hardening (issue 10, web): security headers, URLs with control characters, private downloads, unexpected
errors.

The URL fuzz test and the authorization matrix are in test_urls.py, login throttling in test_login_throttling.py;
secrets and the HTTPS settings in test_settings.py and test_deploy.py; demo data in test_demo_data.py.
"""

import logging
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.db import DataError
from django.test import Client

import lms_import.services
from enrollments.services import enrollment_create
from lms_import.middleware import has_control_character
from lms_import.models import ImportJob
from lms_import.services import import_job_apply, import_job_create, import_job_validate

pytestmark = pytest.mark.django_db
User = get_user_model()
PASSWORD = "a-Correct-horse-9"
# What the database says about a failed write: names a column, a constraint, the learner's data.
DATABASE_TEXT = (
    'duplicate key value violates unique constraint "enrollments_uniq"\nDETAIL: Key (email)=(maria@example.org)'
)


@pytest.fixture
def staff(db):
    user = User.objects.create(username="importer", email="importer@example.org")
    user.user_permissions.add(Permission.objects.get(codename="import_course_records"))
    return user


@pytest.fixture
def root(db):
    return User.objects.create(username="root", email="root@example.org", is_staff=True, is_superuser=True)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# -- Content-Security-Policy ------------------------------------------------------------------------------------
def csp(response) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))


@pytest.mark.parametrize("url", ["/accounts/login/", "/import/", "/admin/", "/certificates/", "/no-such-page/"])
def test_every_page_has_a_policy_without_inline_script_or_style(url, staff, root):
    response = client_for(root).get(url)
    policy = csp(response)

    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff" and response["X-Frame-Options"] == "DENY"


TEMPLATES = "templates"
INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an inline event handler"),
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"<style", re.I), "a <style> element"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


def test_no_template_has_inline_script_or_style():
    """The policy refuses them: a template that had one would break in the browser (the browser tests also
    fail on any CSP violation they see)."""
    from tests.conftest import ROOT

    found = []
    for path in sorted((ROOT / TEMPLATES).rglob("*.html")):
        text = path.read_text()
        for pattern, what in INLINE:
            if pattern.search(text):
                found.append(f"{path.relative_to(ROOT)}: {what}")
    assert not found


# -- control characters ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["\x00", "a\x1bb", "\x7f", "\x85", "\n", "\t"])
def test_control_characters_are_found(text):
    assert has_control_character(text)


@pytest.mark.parametrize("text", ["CARD101", "Müller–Ørsted", "\u202e", "\ufeff", " ", "%00"])
def test_other_text_is_not_a_control_character(text):
    assert not has_control_character(text)


# -- downloads of personal data are never cached ----------------------------------------------------------------
def assert_no_store(response) -> None:
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


def test_the_error_report_is_not_cached(staff, course):
    job = ImportJob.objects.create(created_by=staff, course=course, original_filename="r.csv", error_count=1)
    job.error_report.save("errors.csv", ContentFile(b"line,code\n"), save=True)

    assert_no_store(client_for(staff).get(f"/import/jobs/{job.pk}/error-report/"))


def test_the_pars_csv_and_certificates_are_not_cached(root, course, learner, credit_types):
    enrollment = enrollment_create(
        user=learner,
        course=course,
        complete=True,
        date_completed=datetime(2026, 9, 14, tzinfo=UTC),
        participant_category="physician",
        awards={credit_types["ama_pra_1"].pk: (Decimal("2.00"), None)},
    )
    client = client_for(root)

    assert_no_store(client.get("/reports/pars/learners.csv"))
    assert_no_store(client.get(f"/certificates/{enrollment.pk}/"))
    assert_no_store(client.get(f"/certificates/{enrollment.pk}/pdf/"))
    assert_no_store(client_for(learner).get(f"/certificates/{enrollment.pk}/pdf/"))


def export_data(client: Client, url: str, **extra) -> dict:
    """The export form's answer: first resource, first format (CSV), every field."""
    form = client.get(url).context["form"]
    fields = {name: "on" for name, field in form.fields.items() if getattr(field, "is_selectable_field", False)}
    return {"resource": "0", "format": "0"} | fields | extra


def test_admin_exports_are_not_cached(root, course, learner):
    enrollment = enrollment_create(user=learner, course=course)
    client = client_for(root)

    for model in ("courses/course", "enrollments/enrollment", "credits/creditaward"):
        url = f"/admin/{model}/export/"
        response = client.post(url, export_data(client, url))
        assert response["Content-Disposition"].startswith("attachment"), model
        assert_no_store(response)
    # The changelist's "Export selected" action: its form posts the selected ids to the same export page.
    action = client.post(
        "/admin/enrollments/enrollment/", {"action": "export_admin_action", "_selected_action": [enrollment.pk]}
    )
    assert action.status_code == 200 and b"export_items" in action.content
    url = "/admin/enrollments/enrollment/export/"
    response = client.post(url, export_data(client, url, export_items=[enrollment.pk]))
    assert response["Content-Disposition"].startswith("attachment")
    assert_no_store(response)


# -- unexpected errors: a reference for staff, the database's text for the log ----------------------------------
@pytest.fixture
def failing_pass(monkeypatch):
    def fail(job, path):
        raise DataError(DATABASE_TEXT)

    monkeypatch.setattr(lms_import.services, "pass_open", fail)
    monkeypatch.setattr(lms_import.services, "pass_facts", fail)  # the apply's first step with a producer


def uploaded_job(staff, course, write_csv) -> ImportJob:
    path = write_csv([["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"]])
    return import_job_create(user=staff, importer="course", course=course, path=path, filename="records.csv")


@pytest.mark.django_db(transaction=True)  # the apply takes the lock outside any transaction
@pytest.mark.parametrize("stage", ["validate", "apply"])
def test_an_internal_failure_shows_a_reference_and_logs_the_database_text(
    stage, staff, course, write_csv, failing_pass, caplog
):
    job = uploaded_job(staff, course, write_csv)

    with caplog.at_level(logging.ERROR, logger="lms_import"):
        if stage == "validate":
            import_job_validate(job=job)
        else:
            import_job_apply(job=job, from_statuses=(ImportJob.Status.UPLOADED,))

    job.refresh_from_db()
    assert (job.status, job.failure_code) == ("failed", "INTERNAL")
    reference = re.search(r"Reference (#(\d+)-[0-9a-f]{6}): the site's operators", job.failure_message)
    assert reference and reference.group(2) == str(job.pk)
    assert "unexpected error" in job.failure_message and "nothing" in job.failure_message
    assert "unique constraint" not in job.failure_message and "maria@" not in job.failure_message
    assert "DataError" not in job.failure_message
    (record,) = [r for r in caplog.records if reference.group(1) in r.getMessage()]
    assert DATABASE_TEXT in caplog.text and record.exc_info is not None

    page = client_for(staff).get(f"/import/jobs/{job.pk}/").content.decode()
    assert reference.group(1) in page and "unique constraint" not in page and "maria@" not in page
