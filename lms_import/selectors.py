"""Reads of import jobs that the pages, the command line and the API share: progress, lost or not, confirmable.

Nothing here writes. A decision that needs another table (the lock row) is made here, not in a model
property, so that a page reads the lock once and hands the same state to every question it asks.

    import_lock_state    who holds the import lock, since when, stale or live (the lock's own view of it)
    job_progress         (rows done, rows expected), live from the lock row while the job imports
    job_is_lost          an importing job whose worker is gone
    job_progress_data    what the progress bar polls (its keys are read by static/lms_import/progress.js)
    job_confirmable      whether the page offers "Import"
"""

from core.findings import W_AUTO_COMPLETE

from .importer.lock import LockState, lock_state
from .models import ImportJob, ImportLock

Status = ImportJob.Status


def import_lock_state() -> LockState:
    """The course records lock as the Unlock page and unlock_imports show it."""
    return lock_state()


def job_progress(*, job: ImportJob) -> tuple[int, int]:
    """(rows done, rows expected): while importing, the lock row has the live figures (see ImportLock)."""
    if job.status == Status.IMPORTING:
        live = ImportLock.objects.filter(job=job, token__gt="")
        figures = live.values_list("progress_done", "progress_total").first()
        if figures:
            return figures
    return job.progress_done, job.progress_total


def _holds(lock: LockState, job: ImportJob) -> bool:
    return lock.held and lock.job is not None and lock.job.pk == job.pk


def job_is_lost(*, job: ImportJob, lock: LockState) -> bool:
    """An importing job whose worker is gone: its lock went stale, or it no longer holds the lock and is silent."""
    if job.status != Status.IMPORTING:
        return False
    if _holds(lock, job):
        return lock.stale
    # Not holding the lock (released by an unlock, or not taken yet): lost once its own pulse is older than the lease.
    silent = job.heartbeat_at is None or (lock.db_now - job.heartbeat_at).total_seconds() > lock.lease_seconds
    return silent


def job_progress_data(*, job: ImportJob, lock: LockState) -> dict:
    """The job's progress as the page and its progress endpoint show it; the keys are read by progress.js."""
    done, total = job_progress(job=job)
    if job.status in (Status.QUEUED, Status.IMPORTING) and not _holds(lock, job):
        done = 0  # the apply has not started; the job's own figures are the validation's
    total = max(total, done)
    percent = round(100 * done / total) if total else 0
    if job.status == Status.IMPORTING and _holds(lock, job):
        heartbeat_age = lock.heartbeat_age_seconds  # an apply's heartbeat goes to the lock row
    else:
        heartbeat_age = (lock.db_now - job.heartbeat_at).total_seconds() if job.heartbeat_at else None
    stalled = job.status == Status.VALIDATING and (heartbeat_age is None or heartbeat_age > lock.lease_seconds)
    return {
        "job": job.pk,
        "status": job.status,
        "status_label": job.get_status_display(),
        "active": job.status in ImportJob.ACTIVE_STATUSES,
        "lost": job_is_lost(job=job, lock=lock),
        "stalled": stalled,  # a validation whose worker went silent; its redelivered task runs it again
        "done": done,
        "total": total,
        "percent": percent,
        "heartbeat_age": round(heartbeat_age, 1) if heartbeat_age is not None else None,
    }


def job_confirmable(*, job: ImportJob) -> bool:
    """Can_apply, or validated again after the apply found the auto-complete warning unacknowledged.

    A dry run is never confirmable: it was asked to write nothing (import_job_confirm refuses it too).
    """
    if job.dry_run:
        return False
    if job.can_apply:
        return True
    retry_with_ack = job.failure_code == W_AUTO_COMPLETE and job.rows_valid > 0
    return job.status == Status.VALIDATED and retry_with_ack and (job.rows_invalid == 0 or job.skip_invalid)


def job_needs_acknowledgment(*, job: ImportJob) -> bool:
    """The page shows the W_AUTO_COMPLETE checkbox (never for a dry run, which is not confirmable)."""
    return job.status == Status.VALIDATED and job.blocking_auto_complete and not job.dry_run


def job_cancellable(*, job: ImportJob) -> bool:
    """The page offers "Cancel" (import_job_cancel also cancels a validation whose worker went silent)."""
    return job.status in (Status.UPLOADED, Status.VALIDATED)
