"""The shared browser fixtures work: a real worker runs a job on the test database, and logging in works."""

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from lms_import.models import ImportJob
from lms_import.services import import_job_create
from lms_import.tasks import validate_import_job
from tests.conftest import csv_text

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_for_status(job: ImportJob, *statuses: str, timeout: float = 30) -> ImportJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in statuses:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job #{job.pk} is {job.status}, not {statuses}, after {timeout} s")


def test_the_worker_validates_a_job_queued_by_this_process(worker, admin_user, course, learner):
    rows = [["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"]]
    upload = SimpleUploadedFile("records.csv", csv_text(rows).encode())
    job = import_job_create(user=admin_user, importer="course", course=course, upload=upload, filename="records.csv")

    validate_import_job.delay(job.pk)

    job = wait_for_status(job, "validated", "failed")
    assert (job.status, job.rows_total, job.rows_valid) == ("validated", 1, 1)


def test_login_goes_through_the_login_form(live_url, browser_page, login, staff_user):
    login(browser_page, staff_user)

    assert "/accounts/login/" not in browser_page.url
