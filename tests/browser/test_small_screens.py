"""Phones, keyboards and real-sized lists in Chromium: the pages at 390 px, the skip link and focus ring, and the
site admin's certificates and PARS pages over 100k learners (written with set-based SQL, tests/bulk.py)."""

from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from enrollments.services import enrollment_create
from tests.browser.conftest import screenshot
from tests.browser.test_import_flow import upload
from tests.bulk import big_activity, expected_counts
from tests.conftest import csv_text

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHONE = {"width": 390, "height": 844}


def assert_fits(page) -> None:
    """No sideways scrolling of the page, and every link and button of the header inside the header's blue."""
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{page.url} is {width[0]} px wide in a {width[1]} px window"
    header = page.locator(".site-header").bounding_box()
    for item in page.locator(".site-header a, .site-header button").all():
        box = item.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= header["x"] + header["width"] + 0.5, item.inner_text()
        assert box["y"] >= header["y"] and box["y"] + box["height"] <= header["y"] + header["height"] + 0.5


@pytest.mark.worker
def test_the_pages_fit_a_phone(live_url, worker, new_page, login, admin_user, course, learner, tmp_path):
    page = new_page(viewport=PHONE)
    path = tmp_path / "a-file-name-long-enough-to-wrap-on-a-phone-screen-card101.csv"
    path.write_text(
        csv_text([["L-1", "maria@example.org", "Maria", "Garcia", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "2"]])
    )
    login(page, admin_user)

    page.goto(f"{live_url}/import/course-records/")
    assert_fits(page)
    nav = page.locator(".site-nav").bounding_box()
    assert nav["y"] > page.locator(".brand").bounding_box()["y"]  # the header wrapped onto a second line
    screenshot(page, "phone-upload")

    upload(page, live_url, path, course="CARD101")
    expect(page.get_by_role("heading", name="Preview")).to_be_visible(timeout=60_000)
    assert_fits(page)
    decision = page.locator("#decision")
    decision.get_by_role("button", name="Import").scroll_into_view_if_needed()
    expect(decision.get_by_role("button", name="Import")).to_be_in_viewport()
    screenshot(page, "phone-job")
    decision.get_by_role("button", name="Import").click()
    expect(page.get_by_role("heading", name="Result")).to_be_visible(timeout=60_000)
    assert_fits(page)

    for where in ("/import/course-records/history/", "/import/course-records/holding/", "/reports/pars/"):
        page.goto(live_url + where)
        assert_fits(page)
    # A wide table scrolls inside its box, not the page
    wrap = page.locator("#missing .table-wrap, .pars-activities").first
    expect(wrap).to_be_visible()


def test_skip_link_and_focus_ring(live_url, browser_page, login, admin_user):
    page = browser_page
    login(page, admin_user)
    page.goto(f"{live_url}/import/")

    page.keyboard.press("Tab")

    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    ring = skip.evaluate("e => [getComputedStyle(e).outlineStyle, getComputedStyle(e).outlineWidth]")
    assert ring[0] != "none" and ring[1] != "0px"
    page.keyboard.press("Enter")
    expect(page.locator("main#content")).to_be_focused()
    page.keyboard.press("Tab")  # the next stop is in the page's content, past the header
    assert page.evaluate("() => document.activeElement.closest('main') !== null")


def test_certificates_and_pars_over_100k_learners(
    live_url, new_page, login, admin_user, plain_user, course, credit_types
):
    big_activity(course=course, credit_type=credit_types["ama_pra_1"], n=100_000)
    own = enrollment_create(
        user=plain_user, course=course, complete=True, date_completed=datetime(2026, 3, 1, tzinfo=UTC)
    )
    want = expected_counts(100_000)
    admin = new_page()
    login(admin, admin_user)

    admin.get_by_role("link", name="Certificates").click()
    expect(admin.get_by_role("heading", name="100001 certificates", exact=True)).to_be_visible()
    expect(admin.locator("table.certificates tbody tr")).to_have_count(50)
    admin.get_by_label("Learner").fill("big-4242@")
    admin.get_by_label("Course").select_option(label=f"{course}")
    admin.get_by_role("button", name="Search").click()
    expect(admin.get_by_role("heading", name="1 certificate", exact=True)).to_be_visible()
    row = admin.locator("table.certificates tbody tr")
    expect(row).to_contain_text("big-4242@example.org")
    row.get_by_role("link").click()
    expect(admin.locator("main")).to_contain_text("Cardiology Update")

    admin.get_by_role("link", name="PARS report").click()
    admin.get_by_label("Activity").select_option("0012345")
    admin.get_by_role("button", name="Show").click()
    activity = admin.locator('tr[data-activity="0012345"]')
    expect(activity.locator("td").nth(2)).to_have_text(str(want["physicians"]))
    expect(admin.locator("#in-file")).to_have_text(f"{want['in_file']} completions")
    reasons = admin.locator(".pars-reasons")
    # our learner's own completion has no profile at all: one more missing a date of birth
    expect(reasons).to_contain_text(f"{want['dob'] + 1} completions missing date of birth (MM/DD)")
    reasons.locator('[data-reason="dob"]').get_by_role("link", name="list them").click()
    expect(admin.locator("#missing-list-title")).to_have_text(
        f"Missing date of birth (MM/DD): 1–50 of {want['dob'] + 1}"
    )
    expect(admin.locator("table.pars-missing tbody tr")).to_have_count(50)
    with admin.expect_download() as download:
        admin.get_by_role("link", name="Download the full list (CSV)").click()
    lines = open(download.value.path(), encoding="utf-8-sig").read().splitlines()
    assert len(lines) == 1 + want["missing"] + 1  # the header, every learner missing data, and our own learner
    screenshot(admin, "pars-large-activity")

    learner = new_page()
    login(learner, plain_user)
    learner.get_by_role("link", name="Certificates").click()
    expect(learner.get_by_role("heading", name="My certificates")).to_be_visible()
    expect(learner.locator("main li")).to_have_count(1)
    expect(learner.locator("main li a")).to_have_attribute("href", f"/certificates/{own.pk}/")
    assert learner.goto(f"{live_url}/certificates/?q=big").ok
    expect(learner.locator("main")).not_to_contain_text("big-")
