"""The job page's decision at real scale (issue 11, items 1–3), in Chromium, on PostgreSQL and on the embedded
default (SQLite, `make run`'s own processes).

A site admin uploads 100,000 completions of new learners in which 2,500 rows ask for a credit type the course
does not offer and 1,031 have e-mails that are not e-mails, each one different:
- the decision card is in the first screen (1280 × 800), the findings summary with the grouped line right under
  it, before the paged errors;
- without "Skip invalid rows" the preview says "Needs fixes" and offers no Import;
- with it (and "Create accounts"), Import says exactly what it does, wants both numbers typed (a wrong one is
  refused at its field), and the result says "Imported, N skipped" in amber, on the page and in History,
  whose table fits the page at 1,280 px.
"""

import csv

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD
from tests.browser.test_embedded_default import product  # noqa: F401 (the fixture: `make run` on SQLite)
from tests.conftest import HEADER

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow, pytest.mark.timeout(900)]

ROWS = 100_000
NOT_OFFERED = len([n for n in range(ROWS) if n % 40 == 0])  # 2,500 rows ask for acpe
BAD_EMAILS = len([n for n in range(ROWS) if n % 97 == 1])  # 1,031 e-mails, each one different
SKIPPED = len([n for n in range(ROWS) if n % 40 == 0 or n % 97 == 1])  # a few rows have both problems
VALID = ROWS - SKIPPED
FIRST_SCREEN = {"width": 1280, "height": 800}


def records(path) -> None:
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for n in range(ROWS):
            email = f"not-an-email-{n}" if n % 97 == 1 else f"big{n:07d}@example.org"
            credit = ["acpe", "1.00"] if n % 40 == 0 else ["ama_pra_1", "1.75"]
            out.writerow([f"B{n:07d}", email, "Ana", "Silva", "2026-03-02", "1", "2026-03-20", *credit])


def upload(page, url: str, path, *, skip_invalid: bool) -> str:
    page.goto(f"{url}/import/course-records/")
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_label("Course", exact=True).select_option("CARD101")
    if skip_invalid:
        page.get_by_label("Skip invalid rows").check()
        page.get_by_label("Create accounts for unknown learners").check()
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("heading", name="Preview")).to_be_visible(timeout=240_000)
    return page.url


def decide_at_scale(page, url: str, path) -> None:
    # Without "Skip invalid rows": this file can never be imported as it is, and the page says so.
    upload(page, url, path, skip_invalid=False)
    expect(page.locator("h2 .status")).to_have_text("Needs fixes")
    expect(page.locator("#needs-fixes")).to_contain_text(f"{SKIPPED:,} rows are invalid")
    expect(page.locator("#decision button.primary")).to_have_count(0)

    job_page = upload(page, url, path, skip_invalid=True)
    summary, decision = page.locator("#findings-summary"), page.locator("#decision")
    grouped = summary.locator("li", has_text="E_CREDIT_TYPE_NOT_OFFERED").locator(".finding-group")
    expect(grouped).to_have_text(f"{NOT_OFFERED:,} × E_CREDIT_TYPE_NOT_OFFERED, credit_type = acpe")
    expect(summary.locator("li", has_text="E_EMAIL_INVALID").locator(".finding-group")).to_have_text(
        f"{BAD_EMAILS:,} × E_EMAIL_INVALID"
    )
    # The first screen: the decision card and the start of the summary, above 4,000 rows of errors in pages.
    heading = decision.get_by_role("heading", name="Import this file?").bounding_box()
    assert heading["y"] + heading["height"] < FIRST_SCREEN["height"], heading
    # Then the summary, and only then the paged list of errors.
    assert decision.bounding_box()["y"] < summary.bounding_box()["y"] < page.locator("#errors").bounding_box()["y"]
    button = decision.get_by_role("button", name="Import")
    expect(button).to_have_text(f"Import {VALID:,} rows, skip {SKIPPED:,}, create {VALID:,} accounts")
    expect(decision).to_contain_text(f"The {VALID:,} valid rows are written in one transaction, or none of them is.")
    expect(decision).not_to_contain_text("all of it is written")

    # The typed confirmation: a wrong number is refused at its field, and nothing moves.
    page.get_by_label(f"Type {SKIPPED:,}, the number of rows to skip, to confirm").fill(str(SKIPPED + 10))
    page.get_by_label(f"Type {VALID:,}, the number of accounts to create, to confirm").fill(f"{VALID:,}")
    button.click()
    expect(page.locator("#confirm_skipped-error")).to_contain_text(
        f"You typed {SKIPPED + 10:,}, but this import has {SKIPPED:,} rows to skip"
    )
    expect(page.locator("h2 .status")).to_have_text("Validated")
    # The right numbers import.
    page.get_by_label(f"Type {SKIPPED:,}, the number of rows to skip, to confirm").fill(str(SKIPPED))
    page.get_by_label(f"Type {VALID:,}, the number of accounts to create, to confirm").fill(f"{VALID:,}")
    decision.get_by_role("button", name="Import").click()
    expect(page.get_by_role("heading", name="Result")).to_be_visible(timeout=400_000)

    badge = page.locator("h2 .status")
    expect(badge).to_have_text(f"Imported, {SKIPPED:,} skipped")
    expect(badge).to_have_class("status status-succeeded tone-partial")  # amber, not green
    expect(page.locator("#counts-created")).to_have_text("Created")
    expect(page.locator("#result")).to_contain_text(f"{VALID:,} learner accounts created")
    assert page.url == job_page

    page.goto(f"{url}/import/course-records/history/")
    rows = page.locator("table.jobs tbody tr")
    expect(rows.nth(0)).to_contain_text(f"Imported, {SKIPPED:,} skipped")
    expect(rows.nth(0).locator(".records")).to_contain_text(f"created {VALID:,} enrollments")
    expect(rows.nth(1)).to_contain_text("Needs fixes")
    # Without "Create accounts" the rows of new learners would wait in the holding table.
    expect(rows.nth(1).locator(".records")).to_contain_text(f"would create 0 enrollments, 0 credits, {VALID:,} to the")
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth,"
        " document.querySelector('.table-wrap').scrollWidth, document.querySelector('.table-wrap').clientWidth]"
    )
    assert widths[0] <= widths[1] and widths[2] <= widths[3], widths  # no horizontal scroll, not even inside


@pytest.mark.django_db(transaction=True)
def test_the_decision_at_scale_on_postgresql(live_url, worker, new_page, login, admin_user, course, tmp_path):
    page = new_page(viewport=FIRST_SCREEN)
    login(page, admin_user)
    path = tmp_path / "big.csv"
    records(path)
    decide_at_scale(page, live_url, path)


def test_the_decision_at_scale_on_the_embedded_default(product, new_page, tmp_path):  # noqa: F811
    url, _ = product
    page = new_page(viewport=FIRST_SCREEN)
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    path = tmp_path / "big.csv"
    records(path)
    decide_at_scale(page, url, path)
