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
    job_status_display   the status as pages say it: "Imported, 27,887 skipped", "Needs fixes" (the DB keeps SPEC's)
    job_findings_summary the findings by code (and repeated column and value), counted by the database
    job_typed_confirmations  the numbers "Import" asks the admin to type (above IMPORT_CONFIRM_THRESHOLD)
    job_revert_summary   what the revert of a reverted job removed and kept (its audit event)
    job_import_label     the "Import" button's words: "Import 92,113 rows, skip 27,887, create 73,403 accounts"

"Silent for a lease" has one definition, lms_import.importer.lock.silent, evaluated by the database's clock.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import Exists, Min, OuterRef, Q, QuerySet, Subquery, Sum

from core.findings import W_AUTO_COMPLETE

from .importer.lock import LOST, LockState, lock_state, quiet_after_seconds, silent
from .models import AuditEvent, FindingGroup, ImportJob, ImportLock, RevertRun
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
        "status_label": job_status_display(job=job).label,
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


# -- what the pages say of a job ------------------------------------------------------------------------------
@dataclass(frozen=True)
class StatusDisplay:
    """A job's status as a person reads it; `tone` is the badge's colour (ok, partial, error, info, neutral)."""

    label: str
    tone: str


def _created_anything(job: ImportJob) -> bool:
    created = (job.created_enrollments, job.created_credits, job.created_pending, job.created_accounts)
    return any(created) or bool(job.created_shells)


def job_status_display(*, job: ImportJob) -> StatusDisplay:
    """The status the pages and the API's `status_label` show; the stored status stays SPEC's value.

    A succeeded job that skipped rows is "Imported, N skipped", not a plain success; a validated job that can never
    be imported as uploaded (invalid rows without "Skip invalid rows", or nothing valid) "Needs fixes"; a job that
    wrote nothing says so.
    """
    if job.status == Status.SUCCEEDED:
        if not _created_anything(job):
            return StatusDisplay("Imported nothing", "partial")
        if job.rows_skipped:
            return StatusDisplay(f"Imported, {job.rows_skipped:,} skipped", "partial")
        return StatusDisplay(job.get_status_display(), "ok")
    if job.status == Status.VALIDATED:
        if job.dry_run:
            return StatusDisplay("Dry run", "neutral")
        if not job_confirmable(job=job):
            return StatusDisplay("Needs fixes", "error")
        return StatusDisplay("Validated", "info")
    if job.status == Status.FAILED:
        return StatusDisplay("Failed, nothing imported", "error")
    tone = "neutral" if job.status == Status.REVERTED else "info"
    return StatusDisplay(job.get_status_display(), tone)


@dataclass(frozen=True)
class FindingLine:
    """One (code, column, value) as the summary shows it: how often, and where first."""

    code: str
    column: str
    value: str
    count: int
    line: int | None
    message: str
    other: bool = False


@dataclass
class CodeSummary:
    code: str
    count: int
    example: FindingLine | None
    repeats: list[FindingLine]  # the values of this code found more than once, most frequent first

    @property
    def single(self) -> FindingLine | None:
        """The one (column, value) every finding of this code shares, if so ("27,887 × E_…, credit_type = acpe")."""
        if len(self.repeats) == 1 and self.repeats[0].count == self.count:
            return self.repeats[0]
        return None


REPEATS_PER_CODE = 3


def _finding_line(group: FindingGroup) -> FindingLine:
    return FindingLine(group.code, group.column, group.value, group.count, group.line, group.message, other=group.other)


def job_findings_summary(*, job: ImportJob, repeats: int = REPEATS_PER_CODE) -> list[CodeSummary]:
    """The job's findings by code, most frequent first, each with its most repeated (column, value) and an example.

    Summed by the database over the counts the pass kept (lms_import.models.FindingGroup): three queries whatever
    the number of findings, none of which reads them one by one.
    """
    groups = FindingGroup.objects.filter(job=job)
    first = groups.filter(code=OuterRef("code")).order_by("line", "pk").values("pk")[:1]
    codes = list(
        groups.values("code")
        .annotate(total=Sum("count"), first_line=Min("line"), example=Subquery(first))
        .order_by("-total", "code")
    )
    if not codes:
        return []
    examples = {g.pk: _finding_line(g) for g in FindingGroup.objects.filter(pk__in=[c["example"] for c in codes])}
    summary = {c["code"]: CodeSummary(c["code"], c["total"], examples.get(c["example"]), []) for c in codes}
    repeated = groups.filter(count__gt=1, other=False).order_by("-count", "code", "column", "value")
    for group in repeated[: repeats * len(codes)]:
        entry = summary[group.code]
        if len(entry.repeats) < repeats:
            entry.repeats.append(_finding_line(group))
    return list(summary.values())


@dataclass(frozen=True)
class TypedConfirmation:
    """A number "Import" asks the admin to type: what it counts, the form's and the API's field, its value."""

    field: str
    what: str
    count: int


CONFIRM_SKIPPED, CONFIRM_ACCOUNTS = "confirm_skipped", "confirm_accounts"


def job_rows_to_skip(*, job: ImportJob) -> int:
    return job.rows_invalid if job.skip_invalid else 0


def job_typed_confirmations(*, job: ImportJob) -> list[TypedConfirmation]:
    """The numbers an admin types to confirm: rows skipped and accounts created, each above IMPORT_CONFIRM_THRESHOLD.

    lms_import.services.import_job_confirm enforces them (so the web and the API both ask); the command line, the
    operator's own shell, does not confirm through it.
    """
    threshold = settings.IMPORT_CONFIRM_THRESHOLD
    asked = []
    skipped = job_rows_to_skip(job=job)
    if skipped > threshold:
        asked.append(TypedConfirmation(CONFIRM_SKIPPED, "rows to skip", skipped))
    if job.create_accounts and job.created_accounts > threshold:
        asked.append(TypedConfirmation(CONFIRM_ACCOUNTS, "accounts to create", job.created_accounts))
    return asked


def job_import_label(*, job: ImportJob) -> str:
    """The "Import" button's words: what pressing it does, its zero parts left out."""
    valid = job.rows_valid
    parts = [f"Import {valid:,} row{'s' if valid != 1 else ''}"]
    skipped = job_rows_to_skip(job=job)
    if skipped:
        parts.append(f"skip {skipped:,}")
    if job.create_accounts and job.created_accounts:
        parts.append(f"create {job.created_accounts:,} account{'s' if job.created_accounts != 1 else ''}")
    return ", ".join(parts)


def job_revert_summary(*, job: ImportJob) -> dict | None:
    """What the revert of a reverted job removed and kept ({removed: {kind: n}, kept: {kind: n}}), from its audit
    event; None for a job not reverted (or reverted before reverts were audited with their counts)."""
    if job.status != Status.REVERTED:
        return None
    event = AuditEvent.objects.filter(job=job, action=AuditEvent.Action.REVERT).order_by("-at", "-id").first()
    details = event.details if event else {}
    if not isinstance(details.get("removed"), dict):
        return None
    kept = details.get("kept") if isinstance(details.get("kept"), dict) else {}

    def named(counts: dict) -> list[tuple[int, str]]:
        """(count, what) in the revert's own order of kinds (a JSON object's keys come back in any order)."""
        return [
            (counts[kind], one if counts[kind] == 1 else many)
            for kind, (one, many) in REVERT_KINDS.items()
            if counts.get(kind)
        ]

    return {
        "removed": named(details["removed"]),
        "kept": named(kept),
        "removed_total": sum(details["removed"].values()),
        "kept_total": sum(kept.values()),
        "at": job.reverted_at,
        "by": job.reverted_by,
    }


REVERT_KINDS = {
    "enrollments": ("enrollment", "enrollments"),
    "credits": ("credit award", "credit awards"),
    "pending": ("row in the holding table", "rows in the holding table"),
    "accounts": ("learner account", "learner accounts"),
    "shells": ("course shell", "course shells"),
}
