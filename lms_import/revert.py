"""Revert of a succeeded import job (SPEC §6): remove what it created that nothing has changed since.

    import_job_revert_plan  what a revert would remove and keep (the confirmation page, ``--plan``)
    import_job_revert       do it: one transaction, audited; the job becomes ``reverted``

What the job created is found by its stamps: ``import_job`` on enrollments, credit awards and
pending records, ``created_by_job`` on the accounts' profiles and on shells. A record is unchanged
when ``created_at == updated_at`` (lms_import.records). The rules that decide, record by record,
are the pure ``*_keep_reason`` functions below; one pass over the job's records, in chunks by id,
applies them, so memory stays bounded however large the job was. Kept records are listed with why: every one
(the pages page them and offer them as a CSV file; a revert stores them as RevertKept rows), the audit event the
first KEEP_LISTED.

A site admin's revert runs in a worker (lms_import.services.import_job_revert_later): `on_progress` hears how many
of the job's records have been decided on, chunk by chunk.

The revert holds the import lock row for its transaction (a running import refuses it; an import
that starts meanwhile waits) and locks the job's rows it decides on, so nothing changes under it.
"""

from array import array
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX, is_password_usable
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from courses.models import Course, CourseCredit, CourseObject
from credits.models import CreditAward
from enrollments.models import Enrollment, PendingRecord

from .models import AuditEvent, ImportJob, ImportLock, RevertKept

CHUNK = 2000
KEEP_LISTED = 100
KINDS = ("enrollments", "credits", "pending", "accounts", "shells")

NOT_SUCCEEDED = "Only a succeeded import can be reverted; job #{job} is {status}."
ALREADY_REVERTED = "Job #{job} was already reverted{when}; an import is reverted once."
DRY_RUN = "Job #{job} was a dry run: it wrote nothing, so there is nothing to revert."
IMPORT_RUNNING = (
    "An import is running (job #{job}); revert when it has finished, so that the two never see each other's "
    "half-done work."
)

CHANGED = "changed since the import (last change {when})"
CREDIT_ADDED = "credit was added to it since the import"
CREDIT_CHANGED = "its credit was changed since the import"
PENDING_CHANGED = "changed in the holding table since the import"
PENDING_ENROLLMENT_KEPT = "applied to an account, and the enrollment it made is kept"
ACCOUNT_HAS_RECORDS = "the account has other records (enrollments not removed by this revert)"
ACCOUNT_USED = "the account has been used since the import (logged in, a password set, or staff rights)"
SHELL_NOW_COURSE = "it was turned into a course since the import"
SHELL_HAS_RECORDS = "the shell still holds records (other enrollments or pending records)"
SHELL_CONFIGURED = "credit or course objects were added to it since the import"


class RevertRefused(Exception):
    """The job cannot be reverted (not succeeded, already reverted, a dry run)."""


class RevertLocked(RevertRefused):
    """An import holds the lock; try again when it has finished."""


# -- pure rules ------------------------------------------------------------------------------------------
def revert_refusal(*, job_id: int, status: str, dry_run: bool, reverted_at: datetime | None = None) -> str | None:
    if status == ImportJob.Status.REVERTED:
        when = f" on {timezone.localtime(reverted_at):%Y-%m-%d %H:%M}" if reverted_at else ""
        return ALREADY_REVERTED.format(job=job_id, when=when)
    if dry_run:
        return DRY_RUN.format(job=job_id)
    if status != ImportJob.Status.SUCCEEDED:
        return NOT_SUCCEEDED.format(job=job_id, status=status)
    return None


def unchanged(created_at: datetime | None, updated_at: datetime | None) -> bool:
    return created_at is not None and created_at == updated_at


@dataclass(frozen=True)
class AwardFacts:
    import_job_id: int | None
    created_at: datetime
    updated_at: datetime


def enrollment_keep_reason(
    *, job_id: int, created_at: datetime, updated_at: datetime, awards: list[AwardFacts]
) -> str | None:
    """An enrollment of the job is removed (with its credit) only if neither it nor its credit changed."""
    if not unchanged(created_at, updated_at):
        return CHANGED.format(when=f"{timezone.localtime(updated_at):%Y-%m-%d %H:%M}")
    if any(a.import_job_id != job_id for a in awards):
        return CREDIT_ADDED
    if any(not unchanged(a.created_at, a.updated_at) for a in awards):
        return CREDIT_CHANGED
    return None


def award_keep_reason(*, created_at: datetime, updated_at: datetime) -> str | None:
    """Credit of the job on an enrollment it did not create."""
    return None if unchanged(created_at, updated_at) else CREDIT_CHANGED


def pending_keep_reason(
    *,
    status: str,
    created_at: datetime,
    updated_at: datetime,
    applied_at: datetime | None,
    enrollment_kept: bool,
) -> str | None:
    """A pending record still waiting goes if untouched; one applied since goes with the enrollment it made."""
    if status == PendingRecord.STATUS_PENDING:
        return None if unchanged(created_at, updated_at) else PENDING_CHANGED
    if enrollment_kept:
        return PENDING_ENROLLMENT_KEPT
    if applied_at is None or updated_at != applied_at:
        return PENDING_CHANGED
    return None


def account_keep_reason(*, has_other_records: bool, used: bool) -> str | None:
    if has_other_records:
        return ACCOUNT_HAS_RECORDS
    if used:
        return ACCOUNT_USED
    return None


def shell_keep_reason(*, kind: str, has_other_records: bool, configured: bool) -> str | None:
    if kind != Course.KIND_SHELL:
        return SHELL_NOW_COURSE
    if has_other_records:
        return SHELL_HAS_RECORDS
    if configured:
        return SHELL_CONFIGURED
    return None


# -- the result ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Kept:
    kind: str
    label: str
    reason: str


@dataclass
class RevertResult:
    job_id: int
    applied: bool = False
    removed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    kept: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    kept_records: list[Kept] = field(default_factory=list)  # every one
    on_progress: Callable[[int, int], None] | None = None
    done: int = 0
    total: int = 0

    def keep(self, kind: str, label: str, reason: str) -> None:
        self.kept[kind] += 1
        self.kept_records.append(Kept(kind, label, reason))

    def advance(self, count: int) -> None:
        """count more of the job's records decided on (removed or kept)."""
        self.done += count
        if self.on_progress:
            self.on_progress(self.done, max(self.total, self.done))

    @property
    def kept_total(self) -> int:
        return sum(self.kept.values())

    @property
    def removed_total(self) -> int:
        return sum(self.removed.values())

    def summary(self) -> str:
        verb = "Removed" if self.applied else "Would remove"
        removed = ", ".join(f"{count} {kind}" for kind, count in self.removed.items())
        kept = ", ".join(f"{count} {kind}" for kind, count in self.kept.items() if count) or "nothing"
        return f"{verb}: {removed}. Kept (changed since the import): {kept}."

    def as_dict(self) -> dict:
        return {
            "job": self.job_id,
            "reverted": self.applied,
            "removed": dict(self.removed),
            "kept": dict(self.kept),
            "kept_records": [
                {"kind": k.kind, "record": k.label, "reason": k.reason} for k in self.kept_records[:KEEP_LISTED]
            ],
            # Credit kept with its kept enrollment is counted in "kept", and listed as that enrollment.
            "kept_records_not_listed": max(len(self.kept_records) - KEEP_LISTED, 0),
        }


# -- services --------------------------------------------------------------------------------------------
def import_job_revert_plan(*, job: ImportJob) -> RevertResult:
    """What import_job_revert would remove and keep now; writes nothing."""
    return _revert_pass(job, apply=False)


def revert_size(job: ImportJob) -> int:
    """The records the job created, which a revert decides on one by one: its progress bar's total, and the number
    a site admin types to confirm a large revert."""
    return (
        job.created_enrollments + job.created_credits + job.created_pending + job.created_accounts + job.created_shells
    )


def import_job_revert(*, job: ImportJob, user, on_progress: Callable[[int, int], None] | None = None) -> RevertResult:
    """Remove everything the job created that nothing has changed since, in one transaction; audited.

    Every kept record is stored (RevertKept) with the revert. A site admin's revert runs in a worker
    (services.import_job_revert_later, which calls this); the command line calls it directly.
    """
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        refusal = revert_refusal(
            job_id=locked.pk, status=locked.status, dry_run=locked.dry_run, reverted_at=locked.reverted_at
        )
        if refusal:
            raise RevertRefused(refusal)
        _import_lock_hold()
        # Pending records of the job could be applied by an account created meanwhile: hold them first.
        list(PendingRecord.objects.select_for_update().filter(import_job=locked).values_list("id", flat=True))
        result = _revert_pass(locked, apply=True, on_progress=on_progress)
        for start in range(0, len(result.kept_records), CHUNK):
            RevertKept.objects.bulk_create(
                RevertKept(job=locked, kind=k.kind, record=k.label[:300], reason=k.reason[:300])
                for k in result.kept_records[start : start + CHUNK]
            )
        locked.status = ImportJob.Status.REVERTED
        locked.reverted_at = timezone.now()
        locked.reverted_by = user
        locked.save(update_fields=["status", "reverted_at", "reverted_by", "updated_at"])
        AuditEvent.objects.create(actor=user, action=AuditEvent.Action.REVERT, job=locked, details=result.as_dict())
    job.refresh_from_db()
    return result


def _import_lock_hold() -> None:
    """Hold the import lock row until commit; refuse while a live import holds the lock."""
    from .importer.lock import lock_state

    ImportLock.objects.get_or_create(scope=ImportLock.SCOPE_COURSE_RECORDS)
    lock = ImportLock.objects.select_for_update().get(scope=ImportLock.SCOPE_COURSE_RECORDS)
    if lock.token:
        state = lock_state()
        if state.held and not state.stale:
            raise RevertLocked(IMPORT_RUNNING.format(job=state.job.pk if state.job else "?"))


def _ids(queryset) -> array:
    """The ids of queryset (a values_list of ids), in order, as a compact array (8 bytes each)."""
    return array("q", queryset.order_by("pk").iterator(chunk_size=10 * CHUNK))


def _by_id(queryset, *, apply: bool):
    """The rows of queryset (a values_list whose first value is the id) in chunks of ids, locked when applying.

    The ids are read first, in one pass; each chunk is then read by primary key. Paging with
    "id > last ORDER BY id LIMIT n" instead would let a planner with stale statistics (right after a
    large import) sort all the job's rows once per chunk.
    """
    ids = _ids(queryset.values_list("id", flat=True))
    for start in range(0, len(ids), CHUNK):
        page = queryset.filter(id__in=ids[start : start + CHUNK].tolist()).order_by("id")
        if apply:
            page = page.select_for_update(of=("self",))
        chunk = list(page)
        if chunk:
            yield chunk


def _chunks(ids: array, skip: set[int] | dict):
    for start in range(0, len(ids), CHUNK):
        chunk = [i for i in ids[start : start + CHUNK] if i not in skip]
        if chunk:
            yield chunk


def _revert_pass(job: ImportJob, *, apply: bool, on_progress: Callable[[int, int], None] | None = None) -> RevertResult:
    result = RevertResult(job.pk, applied=apply, on_progress=on_progress, total=revert_size(job))
    kept_enrollments = _enrollments(job, result, apply=apply)
    _foreign_awards(job, result, apply=apply)
    kept_pending_courses = _pending(job, result, kept_enrollments, apply=apply)
    _accounts(job, result, kept_enrollments, apply=apply)
    _shells(job, result, kept_enrollments, kept_pending_courses, apply=apply)
    return result


def _enrollments(job: ImportJob, result: RevertResult, *, apply: bool) -> dict[int, tuple[int, int]]:
    """Remove the job's unchanged enrollments with their credit; return the kept ones: id -> (user, course).

    SQL narrows the job's enrollments to those that *might* be kept (changed since, or with credit that is
    not the job's or changed since) and the rules decide for those; every other enrollment is untouched with
    only its own untouched credit, which is exactly what the rules remove. So a large import is reverted with
    a few set-based statements per chunk, not a Python decision per row.
    """
    job_enrollments = Enrollment.objects.filter(import_job=job)
    if apply:  # hold every row this revert decides on until it commits
        ids = _ids(job_enrollments.select_for_update(of=("self",)).values_list("id", flat=True))
        _ids(
            CreditAward.objects.filter(enrollment__import_job=job)
            .select_for_update(of=("self",))
            .values_list("id", flat=True)
        )
    else:
        ids = _ids(job_enrollments.values_list("id", flat=True))
    touched_credit = CreditAward.objects.filter(enrollment=OuterRef("pk")).filter(
        ~Q(import_job=job) | ~Q(created_at=F("updated_at"))
    )
    candidates = job_enrollments.filter(~Q(created_at=F("updated_at")) | Exists(touched_credit)).values_list(
        "id", "user_id", "course_id", "created_at", "updated_at"
    )
    kept: dict[int, tuple[int, int]] = {}
    reasons: dict[int, str] = {}
    kept_credit = 0
    for chunk in _by_id(candidates, apply=False):
        awards: dict[int, list[AwardFacts]] = defaultdict(list)
        for enrollment_id, job_id, created, updated in CreditAward.objects.filter(
            enrollment_id__in=[row[0] for row in chunk]
        ).values_list("enrollment_id", "import_job_id", "created_at", "updated_at"):
            awards[enrollment_id].append(AwardFacts(job_id, created, updated))
        for enrollment_id, user_id, course_id, created, updated in chunk:
            reason = enrollment_keep_reason(
                job_id=job.pk, created_at=created, updated_at=updated, awards=awards[enrollment_id]
            )
            if reason:
                kept[enrollment_id] = (user_id, course_id)
                reasons[enrollment_id] = reason
                kept_credit += len(awards[enrollment_id])
    _keep_enrollments(result, reasons)
    result.kept["credits"] += kept_credit
    result.removed["enrollments"] += len(ids) - len(kept)
    result.removed["credits"] += CreditAward.objects.filter(enrollment__import_job=job).count() - kept_credit
    if apply:
        for remove in _chunks(ids, kept):
            CreditAward.objects.filter(enrollment_id__in=remove).delete()
            PendingRecord.objects.filter(enrollment_id__in=remove).update(enrollment=None)
            # Their credit and the pointers to them are gone (above): one DELETE, without the collector
            # loading each enrollment to look for dependents that no longer exist.
            Enrollment.objects.filter(id__in=remove)._raw_delete(Enrollment.objects.db)
            result.advance(len(remove))
    # The kept enrollments, and the credit of all of them (decided on with its enrollment).
    result.advance(len(ids) - result.done + result.removed["credits"] + kept_credit)
    return kept


def _keep_enrollments(result: RevertResult, reasons: dict[int, str]) -> None:
    """Count and name (who, which course) the kept enrollments, a chunk of ids at a time."""
    ids = list(reasons)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        named = Enrollment.objects.filter(id__in=chunk)
        labels = {
            pk: f"Enrollment #{pk}: {username} in {course}"
            for pk, username, course in named.values_list("id", "user__username", "course__external_course_id")
        }
        for enrollment_id in chunk:
            result.keep(
                "enrollments", labels.get(enrollment_id, f"Enrollment #{enrollment_id}"), reasons[enrollment_id]
            )


def _foreign_awards(job: ImportJob, result: RevertResult, *, apply: bool) -> None:
    """Credit the job put on enrollments it did not create (the importer refuses this today; revert still copes)."""
    rows = (
        CreditAward.objects.filter(import_job=job)
        .exclude(enrollment__import_job=job)
        .values_list("id", "created_at", "updated_at", "enrollment_id", "credit_type__machine_name")
    )
    for chunk in _by_id(rows, apply=apply):
        remove = []
        for award_id, created, updated, enrollment_id, machine_name in chunk:
            reason = award_keep_reason(created_at=created, updated_at=updated)
            if reason:
                result.keep("credits", f"Credit #{award_id}: {machine_name} on enrollment #{enrollment_id}", reason)
            else:
                remove.append(award_id)
        result.removed["credits"] += len(remove)
        if apply and remove:
            CreditAward.objects.filter(id__in=remove).delete()
        result.advance(len(chunk))


def _pending(job: ImportJob, result: RevertResult, kept_enrollments: dict, *, apply: bool) -> set[int]:
    """Remove the job's unchanged pending records; return the courses of the kept ones."""
    kept_courses: set[int] = set()
    rows = PendingRecord.objects.filter(import_job=job).values_list(
        "id",
        "status",
        "created_at",
        "updated_at",
        "applied_at",
        "enrollment_id",
        "course_id",
        "line",
        "email",
        "external_user_id",
    )
    for chunk in _by_id(rows, apply=apply):
        remove = []
        for record_id, status, created, updated, applied_at, enrollment_id, course_id, line, email, uid in chunk:
            reason = pending_keep_reason(
                status=status,
                created_at=created,
                updated_at=updated,
                applied_at=applied_at,
                enrollment_kept=enrollment_id in kept_enrollments,
            )
            if reason:
                kept_courses.add(course_id)
                result.keep("pending", f"Pending record #{record_id} (line {line}): {email or uid}", reason)
            else:
                remove.append(record_id)
        result.removed["pending"] += len(remove)
        if apply and remove:
            PendingRecord.objects.filter(id__in=remove).delete()
        result.advance(len(chunk))
    return kept_courses


def _accounts(job: ImportJob, result: RevertResult, kept_enrollments: dict, *, apply: bool) -> None:
    """Remove the accounts the job created that have no other records and were never used.

    As for enrollments, SQL narrows the accounts to those the rules might keep, and the rules decide.
    """
    User = get_user_model()
    created = User.objects.filter(learner_profile__created_by_job=job)
    if apply:
        ids = _ids(created.select_for_update(of=("self",)).values_list("id", flat=True))
    else:
        ids = _ids(created.values_list("id", flat=True))
    kept_users = {user_id for user_id, _ in kept_enrollments.values()}
    other_records = Exists(Enrollment.objects.filter(user=OuterRef("pk")).exclude(import_job=job))
    rights = Exists(User.groups.through.objects.filter(user_id=OuterRef("pk"))) | Exists(
        User.user_permissions.through.objects.filter(user_id=OuterRef("pk"))
    )
    candidates = (
        created.annotate(has_other_records=other_records, has_rights=rights)
        .filter(
            Q(has_other_records=True)
            | Q(has_rights=True)
            | Q(last_login__isnull=False)
            | Q(is_staff=True)
            | Q(is_superuser=True)
            | ~Q(password__startswith=UNUSABLE_PASSWORD_PREFIX)
            | Q(pk__in=list(kept_users))
        )
        .values_list(
            "id", "username", "password", "last_login", "is_staff", "is_superuser", "has_other_records", "has_rights"
        )
    )
    kept: set[int] = set()
    for chunk in _by_id(candidates, apply=False):
        for user_id, username, password, last_login, is_staff, is_superuser, has_other, has_rights in chunk:
            used = bool(last_login or is_staff or is_superuser or has_rights or is_password_usable(password))
            reason = account_keep_reason(has_other_records=has_other or user_id in kept_users, used=used)
            if reason:
                kept.add(user_id)
                result.keep("accounts", f"Account {username}", reason)
    result.removed["accounts"] += len(ids) - len(kept)
    if apply:
        for remove in _chunks(ids, kept):
            User.objects.filter(id__in=remove).delete()
            result.advance(len(remove))
    result.advance(len(kept) if apply else len(ids))


def _shells(
    job: ImportJob, result: RevertResult, kept_enrollments: dict, kept_pending_courses: set[int], *, apply: bool
) -> None:
    """Remove the shells the job created that are left empty."""
    kept_courses = {course_id for _, course_id in kept_enrollments.values()} | kept_pending_courses
    rows = Course.objects.filter(created_by_job=job).values_list("id", "external_course_id", "kind")
    for chunk in _by_id(rows, apply=apply):
        ids = [row[0] for row in chunk]
        busy = set(
            Enrollment.objects.filter(course_id__in=ids).exclude(import_job=job).values_list("course_id", flat=True)
        )
        busy |= set(
            PendingRecord.objects.filter(course_id__in=ids).exclude(import_job=job).values_list("course_id", flat=True)
        )
        configured = set(CourseCredit.objects.filter(course_id__in=ids).values_list("course_id", flat=True))
        configured |= set(CourseObject.objects.filter(course_id__in=ids).values_list("course_id", flat=True))
        remove = []
        for course_id, external_id, kind in chunk:
            reason = shell_keep_reason(
                kind=kind,
                has_other_records=course_id in busy or course_id in kept_courses,
                configured=course_id in configured,
            )
            if reason:
                result.keep("shells", f"Course shell {external_id}", reason)
            else:
                remove.append(course_id)
        result.removed["shells"] += len(remove)
        if apply and remove:
            Course.objects.filter(id__in=remove).delete()
        result.advance(len(chunk))
