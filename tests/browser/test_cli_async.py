"""manage.py import_course_records --async: queued for a real Celery worker, applied once."""

import json
import time

import pytest

from enrollments.models import Enrollment
from lms_import.models import ImportJob
from tests.conftest import manage

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def test_async_import_is_applied_by_the_worker(course, learner, write_csv, worker):
    path = write_csv([["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"]])

    result = manage("import_course_records", path, "--course", "CARD101", "--async", "--format", "json")

    assert result.returncode == 0, result.stderr
    queued = json.loads(result.stdout)
    assert queued["status"] == "queued"
    deadline = time.monotonic() + 60
    while ImportJob.objects.get(pk=queued["job"]).status in ("queued", "importing"):
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.2)
    job = ImportJob.objects.get(pk=queued["job"])
    assert job.status == "succeeded" and job.created_enrollments == 1
    assert Enrollment.objects.get().import_job == job
