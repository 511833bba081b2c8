"""Stored files hold personal data: created for their owner and group only, deleted after the retention period."""

import stat
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from lms_import.models import ImportJob
from lms_import.services import import_files_purge, import_job_create, import_job_validate

from .conftest import csv_text

pytestmark = pytest.mark.django_db
BAD = [["L-1", "", "", "", "2026-09-01", "maybe", "", "", ""]]


@pytest.fixture
def admin(db):
    return get_user_model().objects.create(username="admin", is_staff=True, is_superuser=True)


def uploaded(admin, course) -> ImportJob:
    upload = SimpleUploadedFile("records.csv", csv_text(BAD).encode(), content_type="text/csv")
    job = import_job_create(user=admin, importer="course", course=course, upload=upload, queue_validation=False)
    return import_job_validate(job=job)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_uploads_and_reports_are_not_world_readable(admin, course):
    job = uploaded(admin, course)

    assert job.error_report
    for stored in (job.file, job.error_report):
        assert mode(Path(stored.path)) == 0o640, stored.name
        assert mode(Path(stored.path).parent) & 0o007 == 0


def test_finished_jobs_lose_their_files_after_the_retention_period_and_keep_their_counts(admin, course, settings):
    settings.IMPORT_RETENTION_DAYS = 90
    old, recent, waiting = (uploaded(admin, course) for _ in range(3))
    ImportJob.objects.filter(pk__in=[old.pk, recent.pk]).update(status="cancelled")
    ImportJob.objects.filter(pk__in=[old.pk, waiting.pk]).update(created_at=timezone.now() - timedelta(days=91))
    files = [old.file.path, old.error_report.path]

    call_command("purge_import_files")

    old.refresh_from_db()
    assert not old.file and not old.error_report and old.files_removed_at is not None
    assert old.rows_total == 1 and old.error_count == 1 and old.errors  # the job and its counts stay
    assert not any(Path(f).exists() for f in files)
    for kept in (recent, waiting):  # too recent; not finished (validated, waiting for a decision)
        kept.refresh_from_db()
        assert kept.file and kept.error_report and Path(kept.error_report.path).exists()
    assert import_files_purge() == []  # once


def test_the_page_says_the_files_were_removed(admin, course):
    job = uploaded(admin, course)
    ImportJob.objects.filter(pk=job.pk).update(status="cancelled", created_at=timezone.now() - timedelta(days=400))
    import_files_purge()
    client = Client()
    client.force_login(admin)

    page = client.get(f"/import/jobs/{job.pk}/").content.decode()

    assert "were removed on" in page and "Download error report" not in page
    assert client.get(f"/import/jobs/{job.pk}/error-report/").status_code == 404
