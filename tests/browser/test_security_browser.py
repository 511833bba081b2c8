"""The Content-Security-Policy in a real browser: the product's pages and the admin's run with it, and a login
locked out after repeated failures says so. (Every browser test also fails on any CSP violation: conftest.py.)"""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from playwright.sync_api import expect

from enrollments.services import enrollment_create
from lms_import.models import AuditEvent, ImportJob
from tests.browser.conftest import csp_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def site(course, learner, credit_types, staff_user):
    """A job with errors, a complete enrollment with credit: something on every page."""
    job = ImportJob.objects.create(
        created_by=staff_user,
        importer="course",
        course=course,
        original_filename="card101.csv",
        status="validated",
        rows_total=2,
        rows_valid=1,
        rows_invalid=1,
        error_count=1,
        errors=[{"line": 3, "code": "E_DATE_INVALID", "column": "date_completed", "value": "x", "message": "Bad."}],
    )
    job.error_report.save("errors.csv", ContentFile(b"line,code\n3,E_DATE_INVALID\n"), save=True)
    enrollment = enrollment_create(
        user=learner,
        course=course,
        complete=True,
        date_completed=datetime(2026, 9, 14, tzinfo=UTC),
        participant_category="physician",
        awards={credit_types["ama_pra_1"].pk: (Decimal("2.00"), None)},
    )
    return {"job": job, "enrollment": enrollment}


def test_the_product_and_admin_pages_run_under_the_policy(live_url, browser_page, login, admin_user, site, course):
    page = browser_page
    login(page, admin_user)
    job, enrollment = site["job"], site["enrollment"]
    pages = [
        "/import/",
        "/import/course-records/",
        f"/courses/{course.external_course_id}/import/",
        "/import/course-records/history/",
        "/import/course-records/holding/",
        "/import/course-records/unlock/",
        f"/import/jobs/{job.pk}/",
        "/reports/pars/",
        "/certificates/",
        f"/certificates/{enrollment.pk}/",
        "/no-such-page/",
        "/admin/",
        "/admin/courses/course/",
        f"/admin/courses/course/{course.pk}/change/",
        "/admin/courses/course/add/",
        "/admin/courses/course/import/",
        "/admin/enrollments/enrollment/",
        f"/admin/enrollments/enrollment/{enrollment.pk}/change/",
        "/admin/lms_import/auditevent/",
        "/admin/auth/user/add/",
        "/accounts/password_change/",
    ]
    for path in pages:
        page.goto(live_url + path)
        page.wait_for_load_state("load")
        assert page.locator("body").inner_text(), path

    # The admin's export page: its "Select all" toggle is bound by our script, not an inline handler.
    page.goto(f"{live_url}/admin/courses/course/export/")
    fields = page.locator('.selectable-field-export-row input[type="checkbox"]')
    expect(fields.first).to_be_checked()
    page.locator("input.select-toggle").uncheck()
    expect(fields.first).not_to_be_checked()
    page.locator("input.select-toggle").check()
    expect(fields.first).to_be_checked()

    assert csp_violations(page) == []


def test_the_browser_reports_what_the_policy_refuses(live_url, browser_page, login, admin_user):
    """The watch every browser test keeps on violations: an inline script is refused and reported."""
    page = browser_page
    login(page, admin_user)

    ran = page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.injected = true;";
            document.body.appendChild(script);
            return window.injected === true;
        }"""
    )

    assert ran is False
    page.wait_for_timeout(200)  # the console message arrives asynchronously
    (violation,) = csp_violations(page)
    assert "inline script" in violation and "script-src 'self'" in violation
    page.csp_violations.clear()  # expected here: the fixture must not fail the test for it


def test_a_login_locked_out_after_repeated_failures(live_url, browser_page, admin_user, settings):
    page = browser_page
    for _ in range(settings.AXES_FAILURE_LIMIT):
        page.goto(f"{live_url}/accounts/login/")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill("not-the-password")
        page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("heading", name="Too many failed logins")).to_be_visible()
    expect(page.locator("#locked-out")).to_contain_text("logins from your address are refused until 15 minutes")
    assert AuditEvent.objects.get(action="lockout").actor == admin_user
