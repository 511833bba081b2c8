"""Every job ends, with real processes (issue 9): a worker killed with SIGKILL in the middle of an apply, a
confirmed import waiting for the lock meanwhile, Redis handing the killed task back within the visibility
timeout, and Celery beat's periodic sweep.

Workers are real `celery worker` processes on Redis and PostgreSQL (see conftest.py); the lease is short (3 s)
in them and in this process alike.
"""

import time
from datetime import timedelta

import pytest
from django.core.files import File
from django.test import Client
from django.utils import timezone

from enrollments.models import Enrollment
from lms_import.importer.lock import lock_state
from lms_import.models import AuditEvent, ImportJob, ImportLock
from lms_import.services import import_job_apply_later, import_job_create
from tests.browser.test_worker_crash import big_file, wait_until, written
from tests.conftest import csv_text

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

LEASE = 3
VISIBILITY = 8  # longer than it takes the apply to show progress, so that the task comes back only after the kill
RETRY = 2
WORKERS = {"CELERY_VISIBILITY_TIMEOUT": VISIBILITY}


@pytest.fixture
def short_lease(settings):
    settings.IMPORT_LOCK_LEASE_SECONDS = LEASE
    settings.IMPORT_HEARTBEAT_SECONDS = 1
    settings.IMPORT_BATCH_ROWS = 1000
    settings.IMPORT_LOCK_RETRY_SECONDS = RETRY


def uploaded(user, course, path) -> ImportJob:
    with path.open("rb") as f:
        return import_job_create(
            user=user, importer="course", course=course, upload=File(f, name=path.name), create_accounts=True
        )


def small_file(tmp_path):
    path = tmp_path / "card101-small.csv"
    path.write_text(
        csv_text([["S-1", "s1@example.org", "Sam", "Lee", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "2"]])
    )
    return path


def test_a_worker_killed_mid_apply_ends_lost_frees_the_lock_and_the_waiting_import_runs(
    short_lease, start_worker, admin_user, course, tmp_path
):
    workers = [start_worker(env=WORKERS), start_worker(env=WORKERS)]
    big = import_job_apply_later(job=uploaded(admin_user, course, big_file(tmp_path)))  # --async: queued at once
    sent_at = time.monotonic()
    wait_until(
        lambda: ImportLock.objects.filter(job=big, progress_done__gt=0).exclude(token="").exists(),
        60,
        "the import to write",
    )
    (holder,) = [w for w in workers if "lms_import.apply_import_job[" in w.log()]
    (other,) = [w for w in workers if w is not holder]

    # A second confirmed import, taken by the other worker, waits its turn instead of failing with F_LOCKED.
    small = import_job_apply_later(job=uploaded(admin_user, course, small_file(tmp_path)))
    wait_until(lambda: ImportJob.objects.filter(pk=small.pk, waiting_for=big).exists(), 30, "the import to wait")
    client = Client()
    client.force_login(admin_user)
    assert client.get(f"/import/jobs/{small.pk}/progress/").json()["waiting_for"] == big.pk
    assert f"Waiting for import #{big.pk} to finish" in client.get(f"/import/jobs/{small.pk}/").content.decode()
    assert ImportJob.objects.get(pk=small.pk).status == "queued"

    holder.kill()
    killed_at = time.monotonic()
    assert time.monotonic() - sent_at < VISIBILITY, "the apply showed progress too late for this test's timeout"

    # The killed job ends as lost within the lease and a few heartbeats (found by the waiting import taking its
    # stale lock over, or by its own task handed back by Redis: whichever comes first), and frees the lock.
    big = wait_until(lambda: ImportJob.objects.filter(pk=big.pk, status="failed").first(), LEASE + 15, "lost")
    assert big.failure_code == "LOST" and "Nothing of it was committed" in big.failure_message
    assert time.monotonic() - killed_at < LEASE + RETRY + 4
    assert lock_state().job != big

    # Redis handed the killed task back within about the visibility timeout (Kombu's default: up to ~100 s).
    handed_back = (f"apply_import_job({big.pk}) skipped", f"import job {big.pk} is lost")
    wait_until(lambda: any(line in other.log() for line in handed_back), VISIBILITY + 10, "the task handed back")
    assert time.monotonic() - sent_at < VISIBILITY + 5

    # The waiting import runs, and only it wrote anything.
    small = wait_until(lambda: ImportJob.objects.filter(pk=small.pk, status="succeeded").first(), 60, "the import")
    assert small.waiting_for is None and small.created_enrollments == 1
    assert list(Enrollment.objects.values_list("import_job", flat=True)) == [small.pk]
    assert not lock_state().held
    ends = AuditEvent.objects.filter(job=big, action__in=["lost", "takeover"])
    assert ends.count() == 1  # found once


def test_celery_beat_sweeps_lost_imports_and_died_validations(
    short_lease, start_worker, start_beat, admin_user, course, tmp_path
):
    long_ago = timezone.now() - timedelta(minutes=5)
    # An apply whose worker died: importing, its lock silent since.
    dead = ImportJob.objects.create(created_by=admin_user, original_filename="dead.csv", status="importing")
    ImportLock.objects.filter(scope="course_records").update(
        token="dead", job=dead, holder=admin_user, acquired_at=long_ago, heartbeat_at=long_ago
    )
    # Validations whose worker died: once (it runs again), and twice (it is lost).
    once, twice = uploaded(admin_user, course, small_file(tmp_path)), uploaded(admin_user, course, small_file(tmp_path))
    ImportJob.objects.filter(pk=once.pk).update(status="validating", validate_attempts=1, heartbeat_at=long_ago)
    ImportJob.objects.filter(pk=twice.pk).update(status="validating", validate_attempts=2, heartbeat_at=long_ago)

    start_worker()
    beat = start_beat(env={"IMPORT_SWEEP_SECONDS": 1})

    def ended():
        statuses = dict(ImportJob.objects.filter(pk__in=[dead.pk, once.pk, twice.pk]).values_list("pk", "status"))
        return statuses == {dead.pk: "failed", once.pk: "validated", twice.pk: "failed"}

    wait_until(ended, 30, "the sweep to end every job")
    assert "Sending due task sweep-import-jobs (lms_import.sweep_import_jobs)" in beat.log()
    assert {job.failure_code for job in ImportJob.objects.filter(status="failed")} == {"LOST"}
    assert not lock_state().held
    found = AuditEvent.objects.filter(action="lost").values_list("job", "details__found_by", "details__requeued")
    assert sorted(found) == sorted(
        [
            (dead.pk, "the periodic check", False),
            (once.pk, "the periodic check", True),
            (twice.pk, "the periodic check", False),
        ]
    )
    assert written()["enrollments"] == 0
