"""A template in the browser (SPEC §13): download it from the upload form, fill it in a spreadsheet, upload it."""

from datetime import datetime

import openpyxl
import pytest
from playwright.sync_api import expect

from credits.models import CreditAward
from enrollments.models import Enrollment, LearnerProfile

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_download_the_excel_template_fill_it_and_import_it(
    live_url, worker, browser_page, login, staff_user, course, learner, tmp_path
):
    page = browser_page
    login(page, staff_user)
    page.goto(f"{live_url}/courses/CARD101/import/")

    with page.expect_download() as download:
        page.get_by_role("link", name="Excel", exact=True).click()
    assert download.value.suggested_filename == "CARD101-template.xlsx"
    path = tmp_path / "CARD101-template.xlsx"
    download.value.save_as(path)

    # Filled in as a spreadsheet does it: the example rows replaced by the site's learner, dates as dates.
    book = openpyxl.load_workbook(path)
    sheet = book.worksheets[0]
    column = {cell.value: cell.column for cell in sheet[1]}
    sheet.delete_rows(2, sheet.max_row)
    for line, (credit_type, credits) in enumerate([("ama_pra_1", 1.75), ("ancc", 2)], start=2):
        values = {
            "external_user_id": "L-1",
            "external_email": "maria@example.org",
            "enrollment_start": datetime(2026, 9, 1),
            "complete": "1",
            "date_completed": datetime(2026, 9, 14),
            "credit_type": credit_type,
            "credits": credits,
            "license_id": "0012345",
        }
        for name, value in values.items():
            sheet.cell(row=line, column=column[name], value=value)
    filled = tmp_path / "card101-records.xlsx"
    book.save(filled)

    page.get_by_label("CSV file").set_input_files(str(filled))
    page.get_by_role("button", name="Upload").click()

    expect(page.get_by_role("heading", name="Preview")).to_be_visible()
    counts = page.locator("#counts")
    expect(counts.locator("div", has_text="Enrollments")).to_contain_text("1")
    expect(counts.locator("div", has_text="Credits")).to_contain_text("2")
    assert Enrollment.objects.count() == 0

    page.get_by_role("button", name="Import").click()

    expect(page.get_by_role("heading", name="Result")).to_be_visible()
    expect(page.locator("#result")).to_contain_text("1 enrollment and 2 credit awards created")
    enrollment = Enrollment.objects.get(user=learner, course=course)
    assert enrollment.date_completed.date().isoformat() == "2026-09-14"
    assert sorted(CreditAward.objects.values_list("credit_type__machine_name", "credits")) == [
        ("ama_pra_1", pytest.approx(1.75)),
        ("ancc", 2),
    ]
    assert LearnerProfile.objects.get(user=learner).license_id == "0012345"
