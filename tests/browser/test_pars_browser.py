"""The PARS report in real Chromium: open /reports/pars/, download the learner completion CSV, read it."""

import csv
import io

import pytest
from playwright.sync_api import expect

from tests.conftest import make_learner, run_cli

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HEADER = [
    "external_user_id",
    "first_name",
    "last_name",
    "enrollment_start",
    "complete",
    "date_completed",
    "credit_type",
    "credits",
    "participant_category",
    "dob_month",
    "dob_day",
    "licensing_state",
    "license_id",
]


def test_admin_downloads_the_learner_completion_csv(live_url, browser_page, login, admin_user, course, write_csv):
    make_learner("L-1", "maria@example.org", "Maria", "Garcia")
    make_learner("L-2", "=cmd@example.org", "=cmd|' /C calc'!A0", "Chen")
    path = write_csv(
        [
            [
                "L-1",
                "",
                "",
                "2026-09-01",
                "1",
                "2026-09-14",
                "ama_pra_1",
                "2.00",
                "physician",
                "04",
                "09",
                "CA",
                "0045123",
            ],
            ["L-2", "", "", "2026-09-02", "1", "2026-09-20", "ama_pra_1", "1.50", "physician", "11", "03", "NY", "007"],
        ],
        header=HEADER,
    )
    assert run_cli(path, "--course", "CARD101")[0] == 0
    page = browser_page
    login(page, admin_user)

    page.goto(f"{live_url}/reports/pars/")
    row = page.locator('tr[data-activity="0012345"]')
    expect(row).to_contain_text("Cardiology Update")
    expect(row.locator("td").nth(2)).to_have_text("2")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download learner completion CSV").click()
    download = info.value

    assert download.suggested_filename.startswith("pars-learners-all-")
    text = open(download.path(), encoding="utf-8-sig").read()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["ACCME Activity ID"], r["Completion Date"], r["Last Name"]) for r in rows] == [
        ("0012345", "09/14/2026", "Garcia"),
        ("0012345", "09/20/2026", "Chen"),
    ]
    assert rows[0]["Date of Birth MM/DD"] == "04/09" and rows[0]["Licensing ID or NPI"] == "0045123"
    assert rows[1]["Date of Birth MM/DD"] == "11/03" and rows[1]["Licensing ID or NPI"] == "007"
    assert rows[1]["First Name"] == "'=cmd|' /C calc'!A0"  # formula-safe
