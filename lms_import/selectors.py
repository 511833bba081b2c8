"""Reads of import jobs that the pages, the command line and the API share: progress, lost or not, confirmable.

Nothing here writes. A decision that needs another table (the lock row) is made here, not in a model
property, so that a page reads the lock once and hands the same state to every question it asks.

    import_lock_state    who holds the import lock, since when, stale or live (the lock's own view of it)
    jobs_lost            importing jobs whose worker is gone (the sweep ends them; pages say "lost")
    jobs_stalled         validations whose worker went silent for a lease
    job_progress         (rows done, rows expected), live from the lock row while the job imports
    job_is_lost          one job of jobs_lost
    job_heartbeat_age    seconds since a running job's worker last gave a sign of life (None if not running)
    job_progress_data    what the progress bar polls (its keys are read by static/lms_import/progress.js)
    jobs_liveness        the same liveness for the rows of a jobs table (home, History)
    revert_run_progress  a revert running in a worker, as its page shows it
    revert_confirm_count the number a site admin types to confirm a large revert (None when small)
    job_confirmable      whether the page offers "Import"
    job_clean            whether a validated job may confirm itself (auto_confirm "when_clean")
    job_outcome          what a job that just finished a pass means to the people waiting for it (notifications)
    job_summary          the command line's --format json object, which the API and the notifications share

"Silent for a lease" has one definition, lms_import.importer.lock.silent, evaluated by the database's clock.
"""

from django.conf import settings
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet

from core.findings import W_AUTO_COMPLETE

from .importer.lock import LOST, LockState, lock_state, quiet_after_seconds, silent
from .models import ImportJob, ImportLock, RevertRun
from .revert import revert_size

Status = ImportJob.Status


def import_lock_state() -> LockState:
    """The course records lock as the Unlock page and unlock_imports show it."""
    return lock_state()


def jobs_lost() -> QuerySet[ImportJob]:
    """Importing jobs whose worker is gone: the lock they hold went stale, or they hold none and are silent.

    A job holds no lock between its claim and lock_acquire (its own heartbeat_at is set at the claim), or after
    an unlock or a takeover released it (both fail the job as well).
    """
    holding = ImportLock.objects.filter(job=OuterRef("pk")).exclude(token="")
    return ImportJob.objects.filter(status=Status.IMPORTING).filter(
        Q(Exists(holding.filter(silent()))) | (~Q(Exists(holding)) & silent())
    )


def validation_stalled() -> Q:
    """A validation whose worker has been silent for a lease: it wrote nothing, so it may run again."""
    return Q(status=Status.VALIDATING) & silent()


def jobs_stalled() -> QuerySet[ImportJob]:
    """Validations whose worker went silent for a lease (the sweep queues them again once, then ends them)."""
    return ImportJob.objects.filter(validation_stalled())


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


def job_is_lost(*, job: ImportJob) -> bool:
    """An importing job whose worker is gone (see jobs_lost); the sweep will mark it failed."""
    return job.status == Status.IMPORTING and jobs_lost().filter(pk=job.pk).exists()


def job_is_stalled(*, job: ImportJob) -> bool:
    """A validation whose worker went silent for a lease (see jobs_stalled)."""
    return job.status == Status.VALIDATING and jobs_stalled().filter(pk=job.pk).exists()


RUNNING = (Status.VALIDATING, Status.IMPORTING)


def job_heartbeat_age(*, job: ImportJob, lock: LockState) -> float | None:
    """Seconds since the worker running the job last beat: an apply beats on the lock row, a validation (and an
    apply not yet holding the lock) on the job. None for a job no worker runs."""
    if job.status not in RUNNING:
        return None
    if job.status == Status.IMPORTING and _holds(lock, job):
        return lock.heartbeat_age_seconds
    return (lock.db_now - job.heartbeat_at).total_seconds() if job.heartbeat_at else None


def _started_at(job: ImportJob):
    if job.status == Status.VALIDATING:
        return job.validate_started_at
    if job.status == Status.IMPORTING:
        return job.apply_started_at
    return job.created_at if job.status == Status.UPLOADED else job.updated_at


def job_progress_data(*, job: ImportJob, lock: LockState) -> dict:
    """The job's progress as the page and its progress endpoint show it; the keys are read by progress.js.

    `quiet`: a running job whose heartbeat is older than several beats ("no heartbeat for N s — may be hung"),
    before the lease makes it lost. `indeterminate`: no count can be known (waiting for a worker, a file whose
    rows are not known in advance, or the writing and commit after the last row): the bar shows `elapsed`.
    """
    done, total = job_progress(job=job)
    if job.status in (Status.QUEUED, Status.IMPORTING) and not _holds(lock, job):
        done = 0  # the apply has not started; the job's own figures are the validation's
    total = max(total, done)
    percent = round(100 * done / total) if total else 0
    heartbeat_age = job_heartbeat_age(job=job, lock=lock)
    started = _started_at(job)
    elapsed = max((lock.db_now - started).total_seconds(), 0) if started else None
    if job.status in (Status.UPLOADED, Status.QUEUED):
        stage = "waiting"
    elif job.status == Status.VALIDATING:
        stage = "checking"
    elif job.status == Status.IMPORTING and _holds(lock, job) and total and done >= total:
        stage = "writing"  # every row checked and planned: the last writes and the commit
    else:
        stage = "importing"
    return {
        "job": job.pk,
        "status": job.status,
        "status_label": job.get_status_display(),
        "active": job.status in ImportJob.ACTIVE_STATUSES,
        "lost": job_is_lost(job=job),
        "stalled": job_is_stalled(job=job),  # a validation whose worker went silent; it runs again once
        # A confirmed import waiting for the one that holds the lock: that import's id.
        "waiting_for": job.waiting_for_id if job.status == Status.QUEUED else None,
        "done": done,
        "total": total,
        "percent": percent,
        "stage": stage,
        "indeterminate": stage in ("waiting", "writing") or not total,
        "elapsed": round(elapsed) if elapsed is not None else None,
        "heartbeat_age": round(heartbeat_age, 1) if heartbeat_age is not None else None,
        "quiet": heartbeat_age is not None and heartbeat_age > quiet_after_seconds(),
        "quiet_after": quiet_after_seconds(),
    }


def jobs_liveness(*, jobs, lock: LockState) -> list[ImportJob]:
    """The jobs (a list, a page) with `quiet_seconds` set on each: how long a running job's worker has been silent,
    when longer than several beats (the table says "no heartbeat for N s — may be hung"), else None."""
    jobs = list(jobs)
    for job in jobs:
        age = job_heartbeat_age(job=job, lock=lock)
        job.quiet_seconds = round(age) if age is not None and age > quiet_after_seconds() else None
    return jobs


def revert_run_progress(*, run: RevertRun, lock: LockState) -> dict:
    """A revert's progress (records decided on of those the job created), its elapsed time and liveness (as for an
    import: "quiet" after several missed beats; on SQLite its transaction holds the heartbeat back, so the bar is
    indeterminate until the revert commits)."""
    active = run.status in (RevertRun.Status.QUEUED, RevertRun.Status.RUNNING)
    # SQLite lets one connection write at a time: the revert's one transaction holds every heartbeat back until it
    # commits, so there only the lease (a worker that died) says more than "reverting".
    quiet_after = settings.IMPORT_LOCK_LEASE_SECONDS if connection.vendor == "sqlite" else quiet_after_seconds()
    total = max(run.progress_total, run.progress_done)
    since = run.started_at or run.requested_at
    heartbeat_age = (
        (lock.db_now - run.heartbeat_at).total_seconds()
        if run.status == RevertRun.Status.RUNNING and run.heartbeat_at
        else None
    )
    return {
        "status": run.status,
        "active": active,
        "done": run.progress_done,
        "total": total,
        "percent": round(100 * run.progress_done / total) if total else 0,
        "indeterminate": active and not run.progress_done,
        "elapsed": round(max((lock.db_now - since).total_seconds(), 0)) if active and since else None,
        "heartbeat_age": round(heartbeat_age) if heartbeat_age is not None else None,
        "quiet": heartbeat_age is not None and heartbeat_age > quiet_after,
    }


def revert_confirm_count(*, job: ImportJob) -> int | None:
    """The number a site admin types to confirm the revert of job, or None when it is small enough not to ask
    (IMPORT_CONFIRM_THRESHOLD): the records the job created (lms_import.revert.revert_size)."""
    size = revert_size(job)
    return size if size > settings.IMPORT_CONFIRM_THRESHOLD else None


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


def job_clean(*, job: ImportJob) -> bool:
    """A validated job that may confirm itself: rows to write, not one invalid, nothing left to acknowledge."""
    return job_confirmable(job=job) and job.rows_invalid == 0 and not job.blocking_auto_complete


# What a job that has just finished a pass (or was ended) means for the people waiting for it: the events of the
# notifications (SPEC §12), as e-mail subjects say them and webhooks name them.
EVENT_NEEDS_CONFIRMATION, EVENT_SUCCEEDED, EVENT_FAILED, EVENT_LOST = (
    "needs_confirmation",
    "succeeded",
    "failed",
    "lost",
)
EVENTS = (EVENT_NEEDS_CONFIRMATION, EVENT_SUCCEEDED, EVENT_FAILED, EVENT_LOST)


def job_outcome(*, job: ImportJob) -> str | None:
    """The notification event of a job as it is now, or None while it is still on its way (or was cancelled).

    A validated job waits for someone's "Import" (needs_confirmation) if it can be confirmed; one that cannot (its
    rows are invalid and it was not asked to skip them, or nothing is left to import) has failed as it is. A dry run
    is never confirmed: it succeeded if it is clean.
    """
    if job.status == Status.SUCCEEDED:
        return EVENT_SUCCEEDED
    if job.status == Status.FAILED:
        return EVENT_LOST if job.failure_code == LOST else EVENT_FAILED
    if job.status == Status.VALIDATED:
        if job.dry_run:
            clean = job.rows_invalid == 0 or job.skip_invalid
            return (
                EVENT_SUCCEEDED if clean and not job.blocking_auto_complete and not job.failure_code else EVENT_FAILED
            )
        return EVENT_NEEDS_CONFIRMATION if job_confirmable(job=job) else EVENT_FAILED
    return None


def job_summary(*, job: ImportJob, errors: int | None = None) -> dict:
    """The command line's --format json object (SPEC §8: its keys are a contract); the API and webhooks add to it.

    `errors` keeps only the first so many findings (error_count has the total).
    """
    seconds = sum(s for s in (job.validate_seconds, job.apply_seconds) if s is not None)
    kept = job.errors if errors is None else job.errors[:errors]
    return {
        "job": job.pk,
        "status": job.status,
        "importer": job.importer,
        "course": job.course.external_course_id if job.course else None,
        "dry_run": job.dry_run,
        "encoding": job.encoding,
        "rows": {
            "total": job.rows_total,
            "valid": job.rows_valid,
            "invalid": job.rows_invalid,
            "skipped": job.rows_skipped,
        },
        "created": {
            "enrollments": job.created_enrollments,
            "credits": job.created_credits,
            "pending": job.created_pending,
            "accounts": job.created_accounts,
            "shells": job.created_shells,
        },
        "auto_completed": job.auto_completed,
        "errors": [{k: e.get(k) for k in ("line", "code", "column", "value", "message")} for e in kept],
        "warnings": [{k: w.get(k) for k in ("code", "message", "count")} for w in job.warnings],
        "duration_s": round(seconds, 3),
        "error_count": job.error_count,
        "failure": {"code": job.failure_code, "message": job.failure_message} if job.failure_code else None,
        "waiting_for": job.waiting_for_id if job.status == Status.QUEUED else None,
    }
