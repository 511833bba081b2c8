"""A site admin reverts an import in real Chromium: job page → "Revert import" → confirm → reverted, records gone."""

import json

import pytest
from playwright.sync_api import expect

from enrollments.models import Enrollment
from lms_import.models import AuditEvent, ImportJob
from tests.conftest import run_cli

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_admin_reverts_an_import_from_its_job_page(
    live_url, worker, browser_page, login, admin_user, course, learner, write_csv
):
    path = write_csv(
        [
            ["L-1", "maria@example.org", "Maria", "Garcia", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.00"],
            ["N-1", "noor@example.org", "Noor", "Haddad", "2026-09-02", "1", "2026-09-15", "ama_pra_1", "2.00"],
        ]
    )
    code, out, err = run_cli(path, "--course", "CARD101", "--create-accounts", "--format", "json")
    assert code == 0, out + err
    job_id = json.loads(out)["job"]
    page = browser_page
    login(page, admin_user)

    page.goto(f"{live_url}/import/jobs/{job_id}/")
    page.get_by_role("link", name="Revert import").click()

    expect(page.get_by_role("heading", name=f"Revert import #{job_id}")).to_be_visible()
    removed = page.locator("dl.removed")
    expect(removed).to_contain_text("Enrollments")
    expect(removed.locator("div", has_text="Enrollments").locator("dd")).to_have_text("2")
    expect(removed.locator("div", has_text="Accounts").locator("dd")).to_have_text("1")
    assert Enrollment.objects.count() == 2  # the confirmation page changes nothing

    page.get_by_role("button", name="Revert import").click()

    expect(page.locator(".messages")).to_contain_text(f"The revert of import #{job_id} is queued")
    expect(page.locator(".job-status")).to_have_text("Reverted", timeout=30_000)  # a worker reverts; the page follows
    expect(page.locator(".reverted")).to_contain_text("A corrected file can now be imported.")
    assert not Enrollment.objects.exists()
    assert ImportJob.objects.get(pk=job_id).status == "reverted"
    assert AuditEvent.objects.get(action="revert").actor == admin_user

    page.goto(f"{live_url}/import/jobs/{job_id}/")
    expect(page.get_by_role("link", name="Revert import")).to_have_count(0)
    expect(page.locator("main")).to_contain_text("Reverted")
    expect(page.locator("#revert-summary")).to_contain_text(
        f"by {admin_user.get_username()}: removed 2 enrollments, 2 credit awards, 1 learner account."
    )
