"""PARS (SPEC §9): which records ACCME hears about, counted and written in its learner upload layout.

The rules are pure functions over plain values (unit-tested without a database); ``pars_report``
at the bottom is the one selector the page and ``manage.py pars_report`` share.

What counts: enrollments in a *course* (never a shell) with a ``pars_activity_id``, created natively
or by the course-level importer. Global-importer (legacy) records and records in shells never
count; the report says how many were left out and why. Learner counts are distinct enrollments
with an ``enrollment_start`` and a participant category. The learner completion file lists the
physicians' completions (ACCME's learner reporting is for physicians); a completion that lacks
data a board needs is listed with what is missing instead of being written into a file ACCME
would reject.
"""

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from decimal import Decimal

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from core.csv_safety import csv_safe
from core.records import Source

ACCME_COLUMNS = [
    "Record Action",
    "ACCME Activity ID",
    "Completion Date",
    "First Name",
    "Last Name",
    "Date of Birth MM/DD",
    "Licensing State",
    "Licensing ID or NPI",
    "Number of CME Credits",
    "Certifying Board",
    "Certifying Board ID",
    "Number of MOC Points",
]
RECORD_ACTION_ADD = "Add"
REPORTED_SOURCES = frozenset({Source.NATIVE, Source.COURSE_IMPORT})
CATEGORIES = ("physician", "other")

LEFT_OUT_SHELL = "shell"
LEFT_OUT_LEGACY = "legacy"
LEFT_OUT_REASONS = {
    LEFT_OUT_SHELL: (
        "in course shells: shells hold imported legacy records only and are never reported to PARS. To report "
        "them, create the course with its PARS activity ID and import the records into it with the course-level "
        "importer."
    ),
    LEFT_OUT_LEGACY: (
        "imported with the global (legacy) importer: legacy data is not reported to PARS. To report them, revert "
        "that import and import the records with the course-level importer."
    ),
}
NOT_COUNTED = (
    "enrollments without an enrollment start or a participant category (physician/other): PARS counts only "
    "learners with both. Add them in the admin to count these learners."
)
OTHER_NOT_IN_FILE = (
    "completions of other learners (not physicians) are counted above but are not in the learner completion file: "
    "ACCME's learner completion reporting is for physicians."
)

MISSING_NAME = "first and last name"
MISSING_DOB = "date of birth (MM/DD)"
MISSING_BOARD = "certifying board"
MISSING_BOARD_ID = "certifying board ID"
MISSING_LICENSE = "licensing state and license ID or NPI (or a certifying board and board ID)"
MISSING_CREDIT = "AMA PRA Category 1 credit or MOC points to report"
MISSING_CATEGORY = "participant category (physician or other)"


def cme_credit_type() -> str:
    """The credit type reported as 'Number of CME Credits' (AMA PRA Category 1 unless the site says otherwise)."""
    return getattr(settings, "PARS_CME_CREDIT_TYPE", "ama_pra_1")


# -- inclusion rules -------------------------------------------------------------------------------------
def record_left_out(*, course_kind: str, source: str) -> str | None:
    """Why a record of a PARS activity (or of a shell) is left out of PARS, or None when it is reported."""
    if course_kind != "course":
        return LEFT_OUT_SHELL
    if source not in REPORTED_SOURCES:
        return LEFT_OUT_LEGACY
    return None


def counted_category(*, enrollment_start: datetime | None, participant_category: str) -> str | None:
    """The learner count an enrollment adds to ('physician' or 'other'), or None when PARS cannot count it."""
    if enrollment_start is None or participant_category not in CATEGORIES:
        return None
    return participant_category


def in_period(moment: datetime | None, *, date_from: date | None, date_to: date | None, zone: tzinfo) -> bool:
    """Whether a stored moment falls on a day of the period (both ends included), seen in the site's zone."""
    if date_from is None and date_to is None:
        return True
    if moment is None:
        return False
    day = timezone.localtime(moment, zone).date()
    return (date_from is None or day >= date_from) and (date_to is None or day <= date_to)


# -- ACCME formatting ------------------------------------------------------------------------------------
def accme_date(moment: datetime, zone: tzinfo) -> str:
    """MM/DD/YYYY of the day the stored moment falls on in the site's zone (a date imported as 2026-09-14 is
    midnight there, so it never drifts to the 13th)."""
    return timezone.localtime(moment, zone).strftime("%m/%d/%Y")


def _two_digits(value: str) -> str:
    value = value.strip()
    return value.zfill(2) if value.isdigit() and len(value) == 1 else value


def dob_text(month: str, day: str) -> str:
    """'04/09' from the profile's text month and day; kept as text so leading zeros survive (never int())."""
    if not month.strip() or not day.strip():
        return ""
    return f"{_two_digits(month)}/{_two_digits(day)}"


def dob_valid(month: str, day: str) -> bool:
    month, day = month.strip(), day.strip()
    if not (month.isdigit() and day.isdigit()):
        return False
    m, d = int(month), int(day)
    days = {2: 29, 4: 30, 6: 30, 9: 30, 11: 30}.get(m, 31)
    return 1 <= m <= 12 and 1 <= d <= days


def credits_text(value: Decimal | None) -> str:
    return "" if value is None else f"{value:.2f}"


def is_moc_credit(machine_name: str) -> bool:
    return machine_name.endswith("_moc")


@dataclass(frozen=True)
class Completion:
    """One physician's completion of a PARS activity, in plain values."""

    activity_id: str
    course: str
    learner: str  # who, for the admin: external id or e-mail
    completed: datetime
    first_name: str = ""
    last_name: str = ""
    dob_month: str = ""
    dob_day: str = ""
    licensing_state: str = ""
    license_id: str = ""
    certifying_board: str = ""
    board_id: str = ""
    cme_credits: Decimal | None = None
    moc_points: Decimal | None = None


def completion_missing(c: Completion) -> list[str]:
    """What a board needs that this completion lacks; empty when it can go into the upload file.

    Every learner record needs a name and a date of birth (MM/DD) to be matched. MOC points, or a
    certifying board on the profile, need the board and the learner's board ID (ABIM, ABP, ...).
    CME credit is matched to a state licensing board through the licensing state and license ID or
    NPI, unless the learner is identified by a board ID.
    """
    missing = []
    if not c.first_name.strip() or not c.last_name.strip():
        missing.append(MISSING_NAME)
    if not dob_valid(c.dob_month, c.dob_day):
        missing.append(MISSING_DOB)
    has_moc = bool(c.moc_points)
    has_cme = bool(c.cme_credits)
    board_known = bool(c.certifying_board.strip() and c.board_id.strip())
    if has_moc or c.certifying_board.strip():
        if not c.certifying_board.strip():
            missing.append(MISSING_BOARD)
        if not c.board_id.strip():
            missing.append(MISSING_BOARD_ID)
    if has_cme and not board_known and not (c.licensing_state.strip() and c.license_id.strip()):
        missing.append(MISSING_LICENSE)
    if not has_cme and not has_moc:
        missing.append(MISSING_CREDIT)
    return missing


def accme_row(c: Completion, zone: tzinfo) -> list[str]:
    """The completion as a row of ACCME's learner upload layout (ACCME_COLUMNS), every value text."""
    return [
        RECORD_ACTION_ADD,
        c.activity_id,
        accme_date(c.completed, zone),
        c.first_name.strip(),
        c.last_name.strip(),
        dob_text(c.dob_month, c.dob_day),
        c.licensing_state.strip(),
        c.license_id.strip(),
        credits_text(c.cme_credits),
        c.certifying_board.strip(),
        c.board_id.strip(),
        credits_text(c.moc_points),
    ]


def accme_csv(completions: Iterable[Completion], zone: tzinfo) -> str:
    """The learner completion CSV: header and one row per completion, every cell formula-safe (csv_safe)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(ACCME_COLUMNS)
    for completion in completions:
        writer.writerow([csv_safe(cell) for cell in accme_row(completion, zone)])
    return out.getvalue()


# -- the report --------------------------------------------------------------------------------------------
@dataclass
class Activity:
    activity_id: str
    courses: list[str] = field(default_factory=list)  # "CARD101 Cardiology Update"
    physicians: int = 0
    others: int = 0
    not_counted: int = 0
    in_file: int = 0
    missing_data: int = 0
    other_completions: int = 0


@dataclass(frozen=True)
class MissingData:
    completion: Completion
    missing: list[str]


@dataclass
class ParsReport:
    activities: list[Activity]
    completions: list[Completion]  # what the learner completion file holds
    missing: list[MissingData]
    left_out: dict[str, int]  # LEFT_OUT_* -> records
    not_counted: int
    other_completions: int
    zone: tzinfo

    @property
    def left_out_lines(self) -> list[tuple[int, str]]:
        return [(count, LEFT_OUT_REASONS[reason]) for reason, count in self.left_out.items() if count]

    def csv_text(self) -> str:
        return accme_csv(self.completions, self.zone)


# What a PARS row reads of an enrollment, its course and its learner (the report and the missing-data pages).
_ROW_FIELDS = (
    "id",
    "course__kind",
    "course__pars_activity_id",
    "course__external_course_id",
    "course__title",
    "source",
    "enrollment_start",
    "participant_category",
    "complete",
    "date_completed",
    "user__username",
    "user__email",
    "user__first_name",
    "user__last_name",
    "user__learner_profile__external_user_id",
    "user__learner_profile__dob_month",
    "user__learner_profile__dob_day",
    "user__learner_profile__licensing_state",
    "user__learner_profile__license_id",
    "user__learner_profile__certifying_board",
    "user__learner_profile__board_id",
)


def pars_report(
    *, activity: str | None = None, date_from: date | None = None, date_to: date | None = None
) -> ParsReport:
    """Everything the PARS page and command show, read in one pass over the candidate enrollments.

    With a period, learner counts take enrollments that started in it and the file takes completions in it.
    """
    from courses.models import Course
    from credits.models import CreditAward
    from enrollments.models import Enrollment

    zone = timezone.get_current_timezone()
    scope = Q(course__kind="shell") | Q(course__pars_activity_id__gt="")
    if activity:
        scope = Q(course__pars_activity_id=activity)
    if date_from or date_to:
        started, completed = Q(), Q()
        if date_from:
            started &= Q(enrollment_start__date__gte=date_from)
            completed &= Q(date_completed__date__gte=date_from)
        if date_to:
            started &= Q(enrollment_start__date__lte=date_to)
            completed &= Q(date_completed__date__lte=date_to)
        scope &= started | completed
    rows = (
        Enrollment.objects.filter(scope)
        .order_by("course__pars_activity_id", "course__external_course_id", "id")
        .values_list(*_ROW_FIELDS)
    )
    # Every course with an activity id appears, with zero counts when nothing of it is reportable yet.
    activities: dict[str, Activity] = {}
    courses = Course.objects.filter(kind=Course.KIND_COURSE).exclude(pars_activity_id="")
    if activity:
        courses = courses.filter(pars_activity_id=activity)
    for activity_id, course_id, title in courses.order_by("external_course_id").values_list(
        "pars_activity_id", "external_course_id", "title"
    ):
        activities.setdefault(activity_id, Activity(activity_id)).courses.append(f"{course_id} {title}")
    left_out = {LEFT_OUT_SHELL: 0, LEFT_OUT_LEGACY: 0}
    physicians_done: list[tuple] = []
    for chunk in _chunks(rows.iterator(chunk_size=2000), 2000):
        for row in chunk:
            _, kind, activity_id, course_id, title, source = row[:6]
            reason = record_left_out(course_kind=kind, source=source)
            if reason:
                left_out[reason] += 1
                continue
            summary = activities[activity_id]
            start, category, complete, completed = row[6:10]
            if in_period(start, date_from=date_from, date_to=date_to, zone=zone):
                counted = counted_category(enrollment_start=start, participant_category=category)
                if counted == "physician":
                    summary.physicians += 1
                elif counted == "other":
                    summary.others += 1
                else:
                    summary.not_counted += 1
            if complete and completed and in_period(completed, date_from=date_from, date_to=date_to, zone=zone):
                if category == "other":
                    summary.other_completions += 1
                else:  # physicians, and completions nobody categorised: listed, never dropped unseen
                    physicians_done.append(row)
    completions, missing = _completions(physicians_done, CreditAward)
    for completion in completions:
        activities[completion.activity_id].in_file += 1
    for item in missing:
        activities[item.completion.activity_id].missing_data += 1
    ordered = [activities[key] for key in sorted(activities)]
    return ParsReport(
        activities=ordered,
        completions=completions,
        missing=missing,
        left_out=left_out,
        not_counted=sum(a.not_counted for a in ordered),
        other_completions=sum(a.other_completions for a in ordered),
        zone=zone,
    )


def _chunks(items: Iterator, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _completions(rows: list[tuple], award_model) -> tuple[list[Completion], list[MissingData]]:
    cme = cme_credit_type()
    credits: dict[int, dict[str, Decimal]] = {}
    for chunk in _chunks(iter(rows), 2000):
        awards = award_model.objects.filter(enrollment_id__in=[r[0] for r in chunk]).values_list(
            "enrollment_id", "credit_type__machine_name", "credits"
        )
        for enrollment_id, machine_name, amount in awards:
            credits.setdefault(enrollment_id, {})[machine_name] = amount
    completions, missing = [], []
    for row in rows:
        (enrollment_id, _, activity_id, course_id, _, _, _, _, _, completed, username, email, first, last) = row[:14]
        external_id, dob_month, dob_day, state, license_id, board, board_id = (v or "" for v in row[14:])
        earned = credits.get(enrollment_id, {})
        moc = [amount for name, amount in earned.items() if is_moc_credit(name)]
        completion = Completion(
            activity_id=activity_id,
            course=course_id,
            learner=external_id or email or username,
            completed=completed,
            first_name=first,
            last_name=last,
            dob_month=dob_month,
            dob_day=dob_day,
            licensing_state=state,
            license_id=license_id,
            certifying_board=board,
            board_id=board_id,
            cme_credits=earned.get(cme),
            moc_points=sum(moc, Decimal("0")) if moc else None,
        )
        problems = ([] if row[7] == "physician" else [MISSING_CATEGORY]) + completion_missing(completion)
        if problems:
            missing.append(MissingData(completion, problems))
        else:
            completions.append(completion)
    return completions, missing


# -- the page: grouped counts, and the missing list a page at a time ----------------------------------------
# The page cannot hold every completion of a 120k-learner activity. The database groups the enrollments by
# everything the rules above look at (where a value only matters as blank or not, by that), so the rules run
# once per group rather than once per row; the paged list then asks for the rows of the groups that miss data.
# pars_report stays the reference (the file and the command use it); tests/test_pars.py holds the two together.
MISSING_REASONS = {
    "category": MISSING_CATEGORY,
    "name": MISSING_NAME,
    "dob": MISSING_DOB,
    "board": MISSING_BOARD,
    "board-id": MISSING_BOARD_ID,
    "license": MISSING_LICENSE,
    "credit": MISSING_CREDIT,
}
_REASON_KEYS = {text: key for key, text in MISSING_REASONS.items()}
# The blank-or-not flags of a completion's key, in order; then its date of birth as it is stored.
_FLAG_FIELDS = (
    "user__first_name",
    "user__last_name",
    "user__learner_profile__licensing_state",
    "user__learner_profile__license_id",
    "user__learner_profile__certifying_board",
    "user__learner_profile__board_id",
)
MISSING_PER_PAGE = 50


@dataclass
class ParsSummary:
    """What the page shows: per activity and in all, the counts of pars_report, computed by groups."""

    activities: list[Activity]
    left_out: dict[str, int]
    not_counted: int
    other_completions: int
    in_file: int
    missing_count: int  # completions left out of the file for missing data
    missing_by_reason: dict[str, int]  # MISSING_REASONS key -> completions missing it (one may miss several)
    failing_keys: dict[str, set[str]]  # MISSING_REASONS key (and "" for any) -> the completion keys missing it
    scope: Q
    date_from: date | None = None
    date_to: date | None = None

    @property
    def left_out_lines(self) -> list[tuple[int, str]]:
        return [(count, LEFT_OUT_REASONS[reason]) for reason, count in self.left_out.items() if count]

    @property
    def reasons(self) -> list[tuple[str, str, int]]:
        """(key, sentence, count) of every reason some completion has, in MISSING_REASONS order."""
        counts = self.missing_by_reason
        return [(key, text, counts[key]) for key, text in MISSING_REASONS.items() if counts[key]]


def _scope(activity: str | None, date_from: date | None, date_to: date | None) -> tuple[Q, Q, Q]:
    """pars_report's candidate enrollments, and whether one started / was completed in the period."""
    scope = Q(course__kind="shell") | Q(course__pars_activity_id__gt="")
    if activity:
        scope = Q(course__pars_activity_id=activity)
    started, completed = Q(), Q()
    if date_from:
        started &= Q(enrollment_start__date__gte=date_from)
        completed &= Q(date_completed__date__gte=date_from)
    if date_to:
        started &= Q(enrollment_start__date__lte=date_to)
        completed &= Q(date_completed__date__lte=date_to)
    if date_from or date_to:
        scope &= started | completed
    return scope, started, completed & Q(complete=True, date_completed__isnull=False)


def _flag(condition: Q):
    from django.db.models import BooleanField, Case, Value, When

    if not condition:  # no period: every enrollment is in it
        return Value(True, output_field=BooleanField())
    return Case(When(condition, then=Value(True)), default=Value(False), output_field=BooleanField())


def _completion_key():
    """One text per combination of what completion_missing reads: six blank-or-not flags, CME, MOC, then the
    date of birth month and day as stored (so that dob_valid sees the real values)."""
    from django.db.models import Case, CharField, Exists, OuterRef, Value, When
    from django.db.models.functions import Coalesce, Concat, Trim
    from django.db.models.lookups import Exact

    from credits.models import CreditAward

    def filled(name: str):
        return Case(
            When(**{f"{name}__isnull": True}, then=Value("0")),
            When(Exact(Trim(name), Value("")), then=Value("0")),
            default=Value("1"),
            output_field=CharField(),
        )

    def earned(awards):
        return Case(When(Exists(awards), then=Value("1")), default=Value("0"), output_field=CharField())

    awards = CreditAward.objects.filter(enrollment=OuterRef("pk")).exclude(credits=0)
    return Concat(
        *[filled(name) for name in _FLAG_FIELDS],
        earned(awards.filter(credit_type__machine_name=cme_credit_type())),
        earned(awards.filter(credit_type__machine_name__endswith="_moc")),
        Coalesce("user__learner_profile__dob_month", Value("")),
        Value("/"),
        Coalesce("user__learner_profile__dob_day", Value("")),
        output_field=CharField(),
    )


def _key_problems(category: str, key: str) -> list[str]:
    """pars_report's verdict on every completion with this category and key (the rule on representative values)."""
    flags, dob = key[: len(_FLAG_FIELDS) + 2], key[len(_FLAG_FIELDS) + 2 :]
    month, _, day = dob.partition("/")
    first, last, state, license_id, board, board_id, cme, moc = (f == "1" for f in flags)
    completion = Completion(
        activity_id="",
        course="",
        learner="",
        completed=datetime.min,
        first_name="x" if first else "",
        last_name="x" if last else "",
        dob_month=month,
        dob_day=day,
        licensing_state="x" if state else "",
        license_id="x" if license_id else "",
        certifying_board="x" if board else "",
        board_id="x" if board_id else "",
        cme_credits=Decimal(1) if cme else None,
        moc_points=Decimal(1) if moc else None,
    )
    return ([] if category == "physician" else [MISSING_CATEGORY]) + completion_missing(completion)


def pars_summary(
    *, activity: str | None = None, date_from: date | None = None, date_to: date | None = None
) -> ParsSummary:
    """The counts of pars_report(...) in a few grouped queries, whatever the number of learners."""
    from django.db.models import Count

    from courses.models import Course
    from enrollments.models import Enrollment

    scope, started, completed = _scope(activity, date_from, date_to)
    activities: dict[str, Activity] = {}
    courses = Course.objects.filter(kind=Course.KIND_COURSE).exclude(pars_activity_id="")
    if activity:
        courses = courses.filter(pars_activity_id=activity)
    for activity_id, course_id, title in courses.order_by("external_course_id").values_list(
        "pars_activity_id", "external_course_id", "title"
    ):
        activities.setdefault(activity_id, Activity(activity_id)).courses.append(f"{course_id} {title}")
    groups = (
        Enrollment.objects.filter(scope)
        .annotate(
            started_in=_flag(started),
            has_start=_flag(Q(enrollment_start__isnull=False)),
            completed_in=_flag(completed),
            key=_completion_key(),
        )
        .values_list(
            "course__kind",
            "course__pars_activity_id",
            "source",
            "participant_category",
            "started_in",
            "has_start",
            "completed_in",
            "key",
        )
        .annotate(n=Count("id"))
        .order_by()
    )
    left_out = {LEFT_OUT_SHELL: 0, LEFT_OUT_LEGACY: 0}
    by_reason = dict.fromkeys(MISSING_REASONS, 0)
    failing: dict[str, set[str]] = {reason: set() for reason in ["", *MISSING_REASONS]}
    for kind, activity_id, source, category, started_in, has_start, completed_in, key_text, n in groups:
        reason = record_left_out(course_kind=kind, source=source)
        if reason:
            left_out[reason] += n
            continue
        summary = activities[activity_id]
        if started_in:
            start = datetime.min if has_start else None
            counted = counted_category(enrollment_start=start, participant_category=category)
            if counted == "physician":
                summary.physicians += n
            elif counted == "other":
                summary.others += n
            else:
                summary.not_counted += n
        if not completed_in:
            continue
        if category == "other":
            summary.other_completions += n
            continue
        problems = _key_problems(category, key_text)
        if not problems:
            summary.in_file += n
            continue
        summary.missing_data += n
        failing[""].add(f"{category}:{key_text}")
        for problem in problems:
            by_reason[_REASON_KEYS[problem]] += n
            failing[_REASON_KEYS[problem]].add(f"{category}:{key_text}")
    ordered = [activities[k] for k in sorted(activities)]
    return ParsSummary(
        activities=ordered,
        left_out=left_out,
        not_counted=sum(a.not_counted for a in ordered),
        other_completions=sum(a.other_completions for a in ordered),
        in_file=sum(a.in_file for a in ordered),
        missing_count=sum(a.missing_data for a in ordered),
        missing_by_reason=by_reason,
        failing_keys=failing,
        scope=scope & completed,
        date_from=date_from,
        date_to=date_to,
    )


def pars_missing_page(summary: ParsSummary, *, reason: str = "", offset: int = 0, limit: int = MISSING_PER_PAGE):
    """The completions missing data (those missing `reason`, or any), `limit` from `offset`, in pars_report's
    order; each with what it misses, by the rule itself."""
    from django.db.models import CharField, Value
    from django.db.models.functions import Concat

    from credits.models import CreditAward
    from enrollments.models import Enrollment

    keys = summary.failing_keys.get(reason, set())
    if not keys:
        return []
    rows = (
        Enrollment.objects.filter(summary.scope)
        .filter(course__kind="course", source__in=REPORTED_SOURCES)
        .exclude(participant_category="other")
        .annotate(full_key=Concat("participant_category", Value(":"), _completion_key(), output_field=CharField()))
        .filter(full_key__in=sorted(keys))
        .order_by("course__pars_activity_id", "course__external_course_id", "id")
        .values_list(*_ROW_FIELDS)[offset : offset + limit]
    )
    return _completions(list(rows), CreditAward)[1]


MISSING_CSV_COLUMNS = ["Learner", "First Name", "Last Name", "ACCME Activity ID", "Course", "Missing"]


def missing_csv(missing: Iterable[MissingData]) -> str:
    """The full list of completions kept out of the file for missing data, every cell formula-safe."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(MISSING_CSV_COLUMNS)
    for item in missing:
        c = item.completion
        row = [c.learner, c.first_name, c.last_name, c.activity_id, c.course, "; ".join(item.missing)]
        writer.writerow([csv_safe(cell) for cell in row])
    return out.getvalue()
