"""Unlock exactly as the reference note describes it, and who may see which page, in a real browser."""

import re
from datetime import timedelta

import pytest
from django.db.models.functions import Now
from playwright.sync_api import expect

from lms_import.importer.lock import lock_acquire, lock_state
from lms_import.models import AuditEvent, ImportJob, ImportLock
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_unlock_through_the_reference_notes_clicks(
    live_url, browser_page, login, admin_user, staff_user, course, settings
):
    settings.IMPORT_LOCK_LEASE_SECONDS = 120
    job = ImportJob.objects.create(
        created_by=staff_user,
        importer="course",
        course=course,
        original_filename="card101-2026.csv",
        status="importing",
    )
    lock_acquire(job=job)
    ImportLock.objects.update(acquired_at=Now() - timedelta(minutes=7), heartbeat_at=Now() - timedelta(minutes=5))
    page = browser_page

    # 1. Log in as a site admin and go to /import.
    login(page, admin_user)
    page.goto(f"{live_url}/import")
    # 2. Click "Course record import."
    page.get_by_role("link", name="Course record import").first.click()
    # 3. Click "Unlock" in the top header.
    page.locator(".page-header").get_by_role("link", name="Unlock").click()

    expect(page).to_have_url(f"{live_url}/import/course-records/unlock/")
    facts = page.locator(".lock-facts")
    expect(facts).to_contain_text(f"import #{job.pk} (card101-2026.csv) of importer")
    expect(facts).to_contain_text(re.compile(r"Since\s*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(4\d\d s ago\)"))
    expect(facts).to_contain_text(re.compile(r"Last heartbeat\s*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(3\d\d s ago\)"))
    expect(facts).to_contain_text("Stale")
    expect(facts).to_contain_text("lease of 120 s")
    screenshot(page, "unlock")

    # 4. Click "Unlock" button.
    page.get_by_role("button", name="Unlock").click()

    expect(page.get_by_role("status")).to_contain_text(f"Unlocked. Import #{job.pk} is marked failed")
    expect(page.locator(".lock-free")).to_have_text("The import lock is free: no import is running.")
    expect(page.get_by_role("button", name="Unlock")).to_have_count(0)
    assert not lock_state().held
    job.refresh_from_db()
    assert (job.status, job.failure_code) == ("failed", "UNLOCKED")
    assert AuditEvent.objects.get(action="unlock").actor == admin_user

    page.goto(f"{live_url}/import/jobs/{job.pk}/")
    expect(page.locator("#failure")).to_contain_text("Unlocked by admin; nothing of this import was committed.")


def test_a_live_lock_is_shown_live(live_url, browser_page, login, admin_user, staff_user, course):
    job = ImportJob.objects.create(
        created_by=staff_user, importer="course", course=course, original_filename="big.csv", status="importing"
    )
    lock_acquire(job=job)
    login(browser_page, admin_user)

    browser_page.goto(f"{live_url}/import/course-records/unlock/")

    expect(browser_page.locator(".lock-facts")).to_contain_text("Live")
    expect(browser_page.locator(".alert-warning")).to_contain_text("The import is alive and still working")


def test_who_may_see_what(live_url, new_page, login, admin_user, staff_user, plain_user):
    # Anonymous: every page sends to the login page and back.
    page = new_page()
    for path in ["/import/", "/import/course-records/", "/import/course-records/unlock/", "/import/jobs/1/"]:
        page.goto(live_url + path)
        expect(page).to_have_url(f"{live_url}/accounts/login/?next={path}")
        expect(page.get_by_role("heading", name="Log in")).to_be_visible()

    # Logged in without the permission: 403 everywhere.
    page = new_page()
    login(page, plain_user)
    for path in ["/import/", "/import/course-records/", "/import/course-records/holding/", "/courses/X/import/"]:
        response = page.goto(live_url + path)
        assert response.status == 403, path
        expect(page.get_by_role("heading")).to_contain_text("You do not have permission")

    # Import staff: the import pages, but no Unlock tab and no unlock page.
    page = new_page()
    login(page, staff_user)
    page.goto(f"{live_url}/import/")
    page.get_by_role("link", name="Course record import").first.click()
    tabs = page.locator(".page-header nav")
    for tab in ["Import", "History", "Holding"]:
        expect(tabs.get_by_role("link", name=tab, exact=True)).to_be_visible()
    expect(tabs.get_by_role("link", name="Unlock")).to_have_count(0)
    assert page.goto(f"{live_url}/import/course-records/unlock/").status == 403

    # Site admins see Unlock.
    page = new_page()
    login(page, admin_user)
    page.goto(f"{live_url}/import/course-records/")
    expect(page.locator(".page-header nav").get_by_role("link", name="Unlock")).to_be_visible()
