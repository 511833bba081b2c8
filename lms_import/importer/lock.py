"""The import lock (SPEC §7): one row per scope, a token per holder, a heartbeat, fencing.

Taking, refreshing and releasing the lock happen in their own short transactions (autocommit),
never inside the apply transaction, so that other processes see them at once. The apply
transaction checks its token under the lock row right before it commits (lock_fence): a job
that was unlocked or taken over while it ran can never commit. Time is always the database's.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, Q, Value
from django.db.models.functions import Now

from lms_import.models import AuditEvent, ImportJob, ImportLock

SCOPE = ImportLock.SCOPE_COURSE_RECORDS

# The failure code of a job whose worker went silent for a lease, however it was found (the periodic check, its
# own task delivered again, or a later import taking its lock over).
LOST = "LOST"
APPLY_LOST = (
    "The worker importing this file stopped (its process died, was killed or hung: no heartbeat for longer than the "
    "lease of {lease} s){how}. Nothing of it was committed; upload the file again to import it."
)
TAKEN_OVER = "; a later import, #{job}, took its lock over"


class LockHeld(Exception):
    """Another import holds a live lock."""

    def __init__(self, state: "LockState"):
        self.state = state
        job = state.job
        who = (job.created_by.get_username() if job and job.created_by else None) or "the command line"
        since = state.acquired_at.strftime("%Y-%m-%d %H:%M:%S %Z") if state.acquired_at else "?"
        super().__init__(
            f"Another import is running: job #{job.pk if job else '?'}, started by {who} at {since}. Wait for it "
            f"to finish; if it has hung, a site admin can unlock it at /import/course-records/unlock/ "
            f"(or run manage.py unlock_imports)."
        )


class LockLost(Exception):
    """This job's lock was released or taken over while it ran: it must not commit."""


@dataclass
class LockState:
    held: bool
    job: ImportJob | None
    holder_name: str
    acquired_at: datetime | None
    heartbeat_at: datetime | None
    db_now: datetime
    stale: bool
    lease_seconds: int

    @property
    def age_seconds(self) -> float | None:
        return (self.db_now - self.acquired_at).total_seconds() if self.acquired_at else None

    @property
    def heartbeat_age_seconds(self) -> float | None:
        return (self.db_now - self.heartbeat_at).total_seconds() if self.heartbeat_at else None

    @property
    def quiet(self) -> bool:
        """Held, and its heartbeat has missed several beats: "Live" would be a lie (see quiet_after_seconds)."""
        age = self.heartbeat_age_seconds
        return self.held and (age is None or age > quiet_after_seconds())


def _lease() -> timedelta:
    return timedelta(seconds=settings.IMPORT_LOCK_LEASE_SECONDS)


def stale_before():
    """The database's now minus the lease: a heartbeat older than this is stale."""
    return ExpressionWrapper(Now() - Value(_lease()), output_field=DateTimeField())


def silent(field: str = "heartbeat_at") -> Q:
    """Silent for a lease: the heartbeat in `field` is older than the lease, or was never written.

    The one definition: a stale lock (ImportLock), a lost apply, a validation whose worker died (ImportJob).
    """
    return Q(**{f"{field}__lt": stale_before()}) | Q(**{f"{field}__isnull": True})


# A heartbeat is expected every IMPORT_HEARTBEAT_SECONDS; after this many missed beats a page stops saying "Live"
# and says how long it has been silent. Well before the lease (which ends the job), and well after the pauses a
# healthy import has (SQLite's short write transaction holds the heartbeat back while it writes).
QUIET_BEATS = 6


def quiet_after_seconds() -> int:
    """Seconds without a heartbeat after which a running job or the lock "may be hung" (pages only; the lease
    decides what is stale or lost)."""
    return QUIET_BEATS * settings.IMPORT_HEARTBEAT_SECONDS


def _db_now() -> datetime:
    return ImportLock.objects.annotate(now=Now()).values_list("now", flat=True).first()


def _ensure(scope: str) -> None:
    """The row is created by a migration; recreate it if someone deleted it (a flushed database, say)."""
    ImportLock.objects.get_or_create(scope=scope)


def lock_state(*, scope: str = SCOPE) -> LockState:
    _ensure(scope)
    lock = ImportLock.objects.select_related("job__created_by", "holder").get(scope=scope)
    stale = bool(lock.token) and ImportLock.objects.filter(silent(), pk=lock.pk).exists()
    holder = lock.holder.get_username() if lock.holder else ("the command line" if lock.token else "")
    return LockState(
        held=bool(lock.token),
        job=lock.job if lock.token else None,
        holder_name=holder,
        acquired_at=lock.acquired_at if lock.token else None,
        heartbeat_at=lock.heartbeat_at if lock.token else None,
        db_now=_db_now(),
        stale=stale,
        lease_seconds=settings.IMPORT_LOCK_LEASE_SECONDS,
    )


def lock_acquire(*, job: ImportJob, scope: str = SCOPE) -> str:
    """Take the lock for job and return its token; take over a stale lock (audited); raise LockHeld if live."""
    if connection.in_atomic_block:
        raise RuntimeError("The lock is taken outside the apply transaction.")
    token = secrets.token_hex(16)
    _ensure(scope)
    with transaction.atomic():
        lock = ImportLock.objects.select_for_update().get(scope=scope)
        if lock.token:
            stale = ImportLock.objects.filter(silent(), pk=lock.pk).exists()
            if not stale:
                raise LockHeld(lock_state(scope=scope))
            lost = lock.job
            if lost is not None:
                ImportJob.objects.filter(pk=lost.pk, status=ImportJob.Status.IMPORTING).update(
                    status=ImportJob.Status.FAILED,
                    failure_code=LOST,
                    failure_message=APPLY_LOST.format(
                        lease=settings.IMPORT_LOCK_LEASE_SECONDS, how=TAKEN_OVER.format(job=job.pk)
                    ),
                    apply_finished_at=Now(),
                )
            AuditEvent.objects.create(
                actor=job.created_by,
                action=AuditEvent.Action.TAKEOVER,
                job=lost,
                details={
                    "taken_by_job": job.pk,
                    "stale_heartbeat_at": lock.heartbeat_at.isoformat() if lock.heartbeat_at else None,
                },
            )
        ImportLock.objects.filter(pk=lock.pk).update(
            token=token,
            job=job,
            holder=job.created_by,
            acquired_at=Now(),
            heartbeat_at=Now(),
            progress_done=0,
            progress_total=job.progress_total,
        )
    return token


def lock_heartbeat(*, token: str, progress: tuple[int, int] | None = None, scope: str = SCOPE) -> bool:
    """Refresh the heartbeat (and the apply's progress); False when the token no longer holds the lock."""
    fields = {"heartbeat_at": Now()}
    if progress is not None:
        fields["progress_done"], fields["progress_total"] = progress
    return bool(ImportLock.objects.filter(scope=scope, token=token).update(**fields))


def lock_fence(*, token: str, scope: str = SCOPE) -> None:
    """Inside the apply transaction, right before commit: still ours? Holds the row until commit."""
    lock = ImportLock.objects.select_for_update().filter(scope=scope).first()
    if lock is None or lock.token != token:
        raise LockLost("The import was unlocked or taken over while it ran; nothing of it was committed.")


def lock_release(*, token: str, scope: str = SCOPE) -> None:
    ImportLock.objects.filter(scope=scope, token=token).update(token="", job=None, holder=None)


def lock_hold(*, scope: str = SCOPE) -> ImportLock:
    """Inside a transaction: hold the lock row until commit, so that nobody takes, releases or fences it meanwhile."""
    if not connection.in_atomic_block:
        raise RuntimeError("The lock row is held inside a transaction.")
    _ensure(scope)
    return ImportLock.objects.select_for_update().get(scope=scope)


def lock_release_job(*, job_id: int, scope: str = SCOPE) -> bool:
    """Release the lock if (and only if) job_id still holds it; whether it did."""
    return bool(
        ImportLock.objects.filter(scope=scope, job_id=job_id).exclude(token="").update(token="", job=None, holder=None)
    )


def lock_unlock(*, user, scope: str = SCOPE, reason: str = "") -> ImportJob | None:
    """A site admin's Unlock: release whatever holds the lock, mark its job failed, audit it."""
    _ensure(scope)
    with transaction.atomic():
        lock = ImportLock.objects.select_for_update().get(scope=scope)
        job = lock.job if lock.token else None
        details = {
            "token_was_held": bool(lock.token),
            "acquired_at": lock.acquired_at.isoformat() if lock.acquired_at and lock.token else None,
            "heartbeat_at": lock.heartbeat_at.isoformat() if lock.heartbeat_at and lock.token else None,
            "reason": reason,
        }
        ImportLock.objects.filter(pk=lock.pk).update(token="", job=None, holder=None)
        if job is not None:
            ImportJob.objects.filter(
                pk=job.pk, status__in=[ImportJob.Status.IMPORTING, ImportJob.Status.QUEUED]
            ).update(
                status=ImportJob.Status.FAILED,
                failure_code="UNLOCKED",
                failure_message=f"Unlocked by {user.get_username() if user else 'an operator'}; nothing of this "
                "import was committed. Upload the file again to import it.",
                apply_finished_at=Now(),
            )
        AuditEvent.objects.create(actor=user, action=AuditEvent.Action.UNLOCK, job=job, details=details)
    return job
