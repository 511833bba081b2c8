"""Every job ends: lost applies and validations, imports waiting for the lock, redelivered tasks (issue 9).

The database states here are the ones a dead worker leaves; tests/browser/test_jobs_end_workers.py kills real
workers and runs real Celery beat.
"""

import threading
from datetime import timedelta

import celery
import pytest
from celery.exceptions import Retry
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from enrollments.models import Enrollment
from lms_import.importer.lock import lock_state
from lms_import.models import AuditEvent, ImportJob, ImportLock
from lms_import.selectors import job_is_lost
from lms_import.services import (
    APPLY_TASK,
    VALIDATE_TASK,
    ImportWaiting,
    import_job_apply,
    import_job_create,
    import_job_validate,
    import_jobs_sweep,
)
from lms_import.tasks import apply_import_job, lock_retry_countdown, validate_import_job

pytestmark = pytest.mark.django_db
User = get_user_model()
LEASE = 30
ROWS = [["L-1", "", "", "", "2026-09-01", "1", "2026-09-14", "ama_pra_1", "1.50"]]
LONG_AGO = timedelta(minutes=5)


@pytest.fixture(autouse=True)
def lease(settings):
    settings.IMPORT_LOCK_LEASE_SECONDS = LEASE


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, int]]:
    """What would have gone to the broker, as (task name, job id)."""
    sent = []
    for name in (VALIDATE_TASK, APPLY_TASK):
        task = celery.current_app.tasks[name]
        monkeypatch.setattr(task, "delay", lambda job_id, name=name: sent.append((name, job_id)))
    return sent


@pytest.fixture
def alice(db):
    return User.objects.create(username="alice", is_superuser=True)


def job_in(status: str, user, *, silent_for: timedelta = timedelta(0), **fields) -> ImportJob:
    return ImportJob.objects.create(
        created_by=user,
        original_filename="records.csv",
        status=status,
        heartbeat_at=timezone.now() - silent_for,
        **fields,
    )


def hold_lock(job: ImportJob, *, silent_for: timedelta = timedelta(0), token: str = "t0k3n") -> None:
    beat = timezone.now() - silent_for
    ImportLock.objects.update_or_create(
        scope="course_records",
        defaults={"token": token, "job": job, "holder": job.created_by, "acquired_at": beat, "heartbeat_at": beat},
    )


def lost_events(job: ImportJob) -> list[dict]:
    return [event.details for event in AuditEvent.objects.filter(action="lost", job=job).order_by("id")]


# -- lost applies ------------------------------------------------------------------------------------------
def test_the_sweep_ends_an_import_whose_lock_went_stale_and_frees_the_lock(alice):
    dead = job_in("importing", alice)
    hold_lock(dead, silent_for=LONG_AGO)
    assert job_is_lost(job=dead)

    assert import_jobs_sweep() == {"lost": [dead.pk], "requeued": []}

    dead.refresh_from_db()
    assert (dead.status, dead.failure_code) == ("failed", "LOST")
    assert dead.failure_message.startswith("The worker importing this file stopped (its process died, was killed")
    assert "Nothing of it was committed; upload the file again to import it." in dead.failure_message
    assert dead.apply_finished_at is not None
    assert not lock_state().held
    assert lost_events(dead) == [
        {"stage": "apply", "found_by": "the periodic check", "lock_released": True, "requeued": False}
    ]
    assert import_jobs_sweep() == {"lost": [], "requeued": []}  # once


def test_a_live_import_and_one_just_claimed_are_not_lost(alice):
    live = job_in("importing", alice, silent_for=LONG_AGO)  # its own heartbeat_at is the claim's; the lock's counts
    hold_lock(live)
    claimed = job_in("importing", alice)  # between its claim and lock_acquire: no lock yet, heard from just now

    assert import_jobs_sweep() == {"lost": [], "requeued": []}

    assert set(ImportJob.objects.filter(status="importing")) == {live, claimed}
    assert lock_state().job == live


def test_an_import_without_the_lock_silent_for_a_lease_is_lost_and_the_holder_keeps_its_lock(alice):
    # Its worker died between the claim and taking the lock, while another import held it.
    dead = job_in("importing", alice, silent_for=LONG_AGO)
    holder = job_in("importing", alice)
    hold_lock(holder)

    assert import_jobs_sweep()["lost"] == [dead.pk]

    assert lock_state().job == holder and ImportLock.objects.get().token == "t0k3n"
    assert lost_events(dead)[0]["lock_released"] is False


def test_a_redelivered_apply_task_ends_its_lost_job_once_and_never_applies_it(alice, course, learner, write_csv):
    dead = import_job_create(user=alice, importer="course", course=course, path=write_csv(ROWS))
    ImportJob.objects.filter(pk=dead.pk).update(status="importing")
    hold_lock(dead, silent_for=LONG_AGO)

    assert apply_import_job.apply(args=[dead.pk]).get() == "failed"
    assert apply_import_job.apply(args=[dead.pk]).get() == "skipped"  # and again: it is failed now

    dead.refresh_from_db()
    assert (dead.status, dead.failure_code) == ("failed", "LOST")
    assert [e["found_by"] for e in lost_events(dead)] == ["its task, delivered again"]
    assert not Enrollment.objects.exists() and not lock_state().held


def test_a_redelivered_apply_task_of_a_live_import_is_skipped(alice):
    running = job_in("importing", alice)
    hold_lock(running)

    assert apply_import_job.apply(args=[running.pk]).get() == "skipped"

    running.refresh_from_db()
    assert running.status == "importing" and lock_state().job == running and not lost_events(running)


def test_a_job_that_no_longer_imports_is_never_lost(alice):
    # The sweep decides under the lock row, so an apply that commits meanwhile is seen succeeded and left alone.
    done = job_in("succeeded", alice, silent_for=LONG_AGO)
    hold_lock(done, silent_for=LONG_AGO)

    assert import_jobs_sweep() == {"lost": [], "requeued": []}
    assert ImportJob.objects.get(pk=done.pk).status == "succeeded"


# -- validations whose worker died ------------------------------------------------------------------------
def test_a_died_validation_runs_once_more_then_is_lost(
    alice, course, learner, write_csv, sent, django_capture_on_commit_callbacks
):
    job = import_job_create(user=alice, importer="course", course=course, path=write_csv(ROWS))
    job = import_job_validate(job=job)
    assert job.validate_attempts == 1
    # Its worker died while checking: validating, silent for a lease.
    ImportJob.objects.filter(pk=job.pk).update(status="validating", heartbeat_at=timezone.now() - LONG_AGO)

    with django_capture_on_commit_callbacks(execute=True):
        assert import_jobs_sweep() == {"lost": [], "requeued": [job.pk]}
    assert ImportJob.objects.get(pk=job.pk).status == "uploaded" and sent == [(VALIDATE_TASK, job.pk)]
    assert import_jobs_sweep() == {"lost": [], "requeued": []}  # queued once, not at every sweep

    job = import_job_validate(job=job)  # the worker takes it: the second attempt
    assert (job.status, job.validate_attempts) == ("validated", 2)
    ImportJob.objects.filter(pk=job.pk).update(status="validating", heartbeat_at=timezone.now() - LONG_AGO)

    assert import_jobs_sweep() == {"lost": [job.pk], "requeued": []}
    job.refresh_from_db()
    assert (job.status, job.failure_code) == ("failed", "LOST")
    assert "The worker checking this file stopped twice" in job.failure_message
    assert [(e["stage"], e["requeued"]) for e in lost_events(job)] == [("validation", True), ("validation", False)]


def test_a_redelivered_validation_task_runs_a_died_validation_once_more_then_ends_it(alice, course, learner, write_csv):
    job = import_job_create(user=alice, importer="course", course=course, path=write_csv(ROWS))
    ImportJob.objects.filter(pk=job.pk).update(
        status="validating", validate_attempts=1, heartbeat_at=timezone.now() - LONG_AGO
    )
    assert validate_import_job.apply(args=[job.pk]).get() == "validated"

    ImportJob.objects.filter(pk=job.pk).update(status="validating", heartbeat_at=timezone.now() - LONG_AGO)
    assert validate_import_job.apply(args=[job.pk]).get() == "failed"

    job.refresh_from_db()
    assert (job.status, job.failure_code, job.validate_attempts) == ("failed", "LOST", 2)
    assert [e["found_by"] for e in lost_events(job)] == ["its task, delivered again"]


def test_a_live_validation_is_neither_run_twice_nor_lost(alice):
    live = job_in("validating", alice, validate_attempts=2)

    assert validate_import_job.apply(args=[live.pk]).get() == "skipped"
    assert import_jobs_sweep() == {"lost": [], "requeued": []}
    assert ImportJob.objects.get(pk=live.pk).status == "validating"


# -- confirmed imports wait their turn -------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)  # the lock is taken outside any transaction
def test_a_confirmed_import_that_finds_the_lock_held_waits_for_it_and_runs_when_it_is_free(
    alice, course, learner, write_csv
):
    running = job_in("importing", alice)
    hold_lock(running)
    job = import_job_create(user=alice, importer="course", course=course, path=write_csv(ROWS))
    ImportJob.objects.filter(pk=job.pk).update(status="queued")

    with pytest.raises(ImportWaiting, match=f"Waiting for import #{running.pk} to finish"):
        import_job_apply(job=job)

    job.refresh_from_db()
    assert (job.status, job.waiting_for, job.failure_code, job.apply_started_at) == ("queued", running, "", None)
    assert lock_state().job == running

    ImportLock.objects.update(token="", job=None, holder=None)  # the running import ends
    job = import_job_apply(job=job)
    assert (job.status, job.waiting_for) == ("succeeded", None) and Enrollment.objects.count() == 1


@pytest.mark.django_db(transaction=True)  # the lock is taken outside any transaction
def test_a_waiting_import_takes_a_stale_lock_over_and_the_dead_holder_is_lost(alice, course, learner, write_csv):
    dead = job_in("importing", alice)
    hold_lock(dead, silent_for=LONG_AGO)
    job = import_job_create(user=alice, importer="course", course=course, path=write_csv(ROWS))
    ImportJob.objects.filter(pk=job.pk).update(status="queued", waiting_for=dead)

    assert import_job_apply(job=job).status == "succeeded"

    dead.refresh_from_db()
    assert (dead.status, dead.failure_code) == ("failed", "LOST")
    assert AuditEvent.objects.get(action="takeover").details["taken_by_job"] == job.pk


@pytest.mark.django_db(transaction=True)  # the lock is taken outside any transaction
def test_the_apply_task_retries_a_waiting_import_with_back_off(alice, course, learner, write_csv, monkeypatch):
    running = job_in("importing", alice)
    hold_lock(running)
    job = import_job_create(user=alice, importer="course", course=course, path=write_csv(ROWS))
    ImportJob.objects.filter(pk=job.pk).update(status="queued")
    retries = []

    def retry(countdown, max_retries):
        retries.append((countdown, max_retries))
        raise Retry("waiting", when=countdown)

    monkeypatch.setattr(apply_import_job, "retry", retry)
    result = apply_import_job.apply(args=[job.pk], retries=3)

    assert result.state == "RETRY"
    assert retries == [(lock_retry_countdown(3), None)]  # waits as long as the holder runs
    assert ImportJob.objects.get(pk=job.pk).status == "queued"


def test_the_back_off_doubles_from_a_heartbeat_up_to_its_limit(settings):
    settings.IMPORT_HEARTBEAT_SECONDS = 5
    settings.IMPORT_LOCK_RETRY_SECONDS = 30

    assert [lock_retry_countdown(n) for n in range(6)] == [5, 10, 20, 30, 30, 30]
    assert lock_retry_countdown(10_000) == 30


@pytest.mark.django_db(transaction=True)  # the lock is taken outside any transaction
def test_the_command_lines_foreground_run_is_still_refused_with_f_locked(alice, course, learner, write_csv):
    from tests.conftest import run_cli

    running = job_in("importing", alice)
    hold_lock(running)

    code, out, _ = run_cli(write_csv(ROWS), "--course", "CARD101", "--format", "json")

    assert code == 3 and '"code": "F_LOCKED"' in out and '"waiting_for": null' in out


# -- a dry run, whatever the face ------------------------------------------------------------------------------
def test_an_apply_task_for_a_dry_run_forged_or_redelivered_is_skipped(alice, course, learner, write_csv):
    job = import_job_create(user=alice, importer="course", course=course, path=write_csv(ROWS), dry_run=True)
    job = import_job_validate(job=job)
    for status in ("validated", "queued"):  # as it is, and even forced into the queue
        ImportJob.objects.filter(pk=job.pk).update(status=status)

        assert apply_import_job.apply(args=[job.pk]).get() == "skipped"

        assert ImportJob.objects.get(pk=job.pk).status == status
    assert not Enrollment.objects.exists() and not lock_state().held


# -- a verdict stands ----------------------------------------------------------------------------------------
def ended_meanwhile(job: ImportJob):
    """An on_progress callback that ends the job the way the sweep does, while its pass still runs: from another
    connection (a thread has its own), outside the apply's transaction."""

    def sweep() -> None:
        ImportJob.objects.filter(pk=job.pk).update(status="failed", failure_code="LOST", failure_message="gone")
        connection.close()

    def end(done: int, total: int) -> None:
        if done:
            thread = threading.Thread(target=sweep)
            thread.start()
            thread.join()

    return end


@pytest.mark.django_db(transaction=True)
def test_a_validation_ended_while_it_ran_keeps_that_verdict(alice, course, learner, write_csv):
    job = import_job_create(user=alice, importer="course", course=course, path=write_csv(ROWS))

    job = import_job_validate(job=job, on_progress=ended_meanwhile(job))

    assert (job.status, job.failure_code) == ("failed", "LOST")
    assert ImportJob.objects.get(pk=job.pk).failure_code == "LOST"


@pytest.mark.django_db(transaction=True)
def test_an_apply_with_row_errors_ended_while_it_ran_keeps_that_verdict(alice, course, learner, write_csv):
    bad = [["L-1", "", "", "", "2026-09-01", "maybe", "", "", ""]]
    job = import_job_create(user=alice, importer="course", course=course, path=write_csv(ROWS + bad))

    job = import_job_apply(job=job, from_statuses=("uploaded",), on_progress=ended_meanwhile(job))

    assert (job.status, job.failure_code) == ("failed", "LOST")
    assert ImportJob.objects.get(pk=job.pk).status == "failed" and not Enrollment.objects.exists()


def test_jobs_are_never_deleted_so_their_records_always_name_one(alice, course, learner, write_csv):
    from django.db import DatabaseError, transaction

    job = import_job_create(user=alice, importer="course", course=course, path=write_csv(ROWS))
    with pytest.raises(DatabaseError, match="cannot be deleted"), transaction.atomic():
        job.delete()
    assert ImportJob.objects.filter(pk=job.pk).exists()
