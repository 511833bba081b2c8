"""The mapping step in Chromium (SPEC §13): a file from another system, its columns mapped in the browser, the
mapping saved by name and chosen again on the next upload; a workbook's columns mapped the same way."""

import pytest
from playwright.sync_api import expect

from enrollments.models import Enrollment
from lms_import.models import ColumnMapping
from lms_import.services import SCHEMA_COLUMNS
from tests.browser.conftest import screenshot
from tests.browser.test_import_flow import job_shown, upload
from tests.conftest import csv_text, make_learner
from tests.test_column_mapping import FOREIGN, MAPPING, ROWS, xlsx_write

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def columns_map(page, mapping: dict[str, str]) -> None:
    """On the mapping step: each importer column to its file column, every other one to "not in the file"."""
    for name in SCHEMA_COLUMNS:
        page.get_by_label(name, exact=True).select_option(mapping.get(name, ""))


def test_foreign_columns_are_mapped_saved_by_name_and_reused(
    live_url, worker, browser_page, login, staff_user, course, learner, tmp_path
):
    page = browser_page
    make_learner("L-2", "james@example.org", "James", "Chen")
    first = tmp_path / "registration.csv"
    first.write_text(csv_text(ROWS[:2], FOREIGN))
    login(page, staff_user)

    upload(page, live_url, first, course="CARD101")

    # F_MISSING_COLUMN: the file's columns as read, and the required ones, missing ones marked.
    expect(page.locator("#failure")).to_contain_text("F_MISSING_COLUMN", timeout=30_000)
    table = page.locator("table.columns tbody tr")
    expect(table).to_have_count(len(FOREIGN))
    expect(table.nth(0)).to_contain_text("Participant Email")
    expect(table.nth(0)).to_contain_text("unknown")
    expect(table.nth(0)).to_contain_text("maria@example.org")
    expect(page.locator(".required-columns .missing")).to_have_text(
        ["✗ missing: external_user_id or external_email", "✗ missing: complete"]
    )

    page.get_by_role("link", name="Map the columns").click()

    # Pre-filled with the most similar column; each choice shows the column's first values.
    email = page.get_by_label("external_email", exact=True)
    expect(email).to_have_value("Participant Email")
    shown = "Participant Email (e.g. maria@example.org, maria@example.org)"
    expect(email.locator("option:checked")).to_have_text(shown)
    expect(page.get_by_label("complete", exact=True).locator("option", has_text="Done")).to_have_text(
        "Done (e.g. 1, 1)"
    )
    columns_map(page, MAPPING)
    page.get_by_label("Save this mapping as").fill("Registration export")
    screenshot(page, "mapping")
    page.get_by_role("button", name="Check again").click()

    expect(page.get_by_role("heading", name="Preview")).to_be_visible(timeout=30_000)
    expect(page.locator("#mapping-used")).to_contain_text("Registration export")
    expect(page.locator("#counts")).to_contain_text("2")
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("heading", name="Result")).to_be_visible(timeout=30_000)
    job = job_shown(page)
    assert job.status == "succeeded" and job.mapping.name == "Registration export"
    assert ColumnMapping.objects.get().columns == MAPPING
    assert Enrollment.objects.get(user=learner).credit_awards.count() == 2

    # The next file of the same system: its mapping is chosen by name on the upload form.
    second = tmp_path / "registration-2.csv"
    james = [["james@example.org", "L-2", *row[2:]] for row in ROWS[:2]]
    second.write_text(csv_text(james, FOREIGN))
    page.goto(f"{live_url}/import/course-records/")
    page.get_by_label("Course", exact=True).select_option("CARD101")
    page.get_by_label("Column mapping").select_option("Registration export")
    page.get_by_label("CSV file").set_input_files(str(second))
    page.get_by_role("button", name="Upload").click()

    expect(page.get_by_role("heading", name="Preview")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("heading", name="Result")).to_be_visible(timeout=30_000)
    assert job_shown(page).mapping.name == "Registration export"
    assert Enrollment.objects.filter(user__email="james@example.org").count() == 1


def test_a_workbooks_foreign_columns_are_mapped_too(
    live_url, worker, browser_page, login, admin_user, course, learner, tmp_path
):
    page = browser_page
    path = xlsx_write(tmp_path / "registration.xlsx", FOREIGN, ROWS)
    login(page, admin_user)

    upload(page, live_url, path, course="CARD101", skip_invalid=True)

    expect(page.locator("#failure")).to_contain_text("F_MISSING_COLUMN", timeout=30_000)
    expect(page.locator("table.columns tbody tr").nth(4)).to_contain_text("2026-09-14")  # a date cell, as text
    page.get_by_role("link", name="Map the columns").click()
    columns_map(page, MAPPING)
    page.get_by_role("button", name="Check again").click()

    expect(page.get_by_role("heading", name="Preview")).to_be_visible(timeout=30_000)
    errors = page.locator("table.errors tbody tr")
    expect(errors).to_have_count(1)
    expect(errors.first).to_contain_text("E_LEARNER_ID_MISSING")
    expect(errors.first).to_contain_text("external_user_id")
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("heading", name="Result")).to_be_visible(timeout=30_000)
    assert Enrollment.objects.get(user=learner).credit_awards.count() == 2
    assert not ColumnMapping.objects.exists()  # not saved: no name was given
