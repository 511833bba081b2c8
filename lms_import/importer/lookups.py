"""Bulk reads the checker and planner need: one query per batch of rows, never one per row."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef
from django.db.models.functions import Lower

from courses.models import Course, CourseCredit, CourseObject
from credits.models import CreditAward, CreditType
from credits.rules import Offer
from enrollments.engine import completes_on_enrollment
from enrollments.models import Enrollment, LearnerProfile, PendingRecord

PROFILE_FIELDS = ("dob_month", "dob_day", "licensing_state", "license_id", "certifying_board", "board_id")


@dataclass(frozen=True, slots=True)
class CourseInfo:
    external_course_id: str
    title: str
    kind: str
    id: int | None  # None: a shell this import will create
    offers: dict[str, Offer] | None  # None for shells, which offer nothing and take any credit type
    auto_complete: bool
    shell_ordinal: int = -1

    @property
    def key(self) -> int:
        """A compact exact key: existing courses by id, shells to create by their order in the file."""
        return self.id * 2 if self.id is not None else self.shell_ordinal * 2 + 1


@dataclass(frozen=True, slots=True)
class Learner:
    user_id: int
    email: str
    external_user_id: str
    profile: tuple[str, ...] | None  # None: the user has no learner profile yet
    label: str


def credit_types_all() -> dict[str, int]:
    return dict(CreditType.objects.values_list("machine_name", "id"))


def courses_find(external_ids: set[str]) -> dict[str, CourseInfo]:
    courses = list(
        Course.objects.filter(external_course_id__in=external_ids).annotate(
            has_required=Exists(CourseObject.objects.filter(course=OuterRef("pk"), required=True))
        )
    )
    offers: dict[int, dict[str, Offer]] = {c.id: {} for c in courses}
    for credit in CourseCredit.objects.filter(course__in=[c.id for c in courses]).select_related("credit_type"):
        offers[credit.course_id][credit.credit_type.machine_name] = Offer(
            credit_type_id=credit.credit_type_id,
            machine_name=credit.credit_type.machine_name,
            max_credits=credit.max_credits,
            variable=credit.variable,
            increment=credit.increment,
        )
    return {
        c.external_course_id: CourseInfo(
            external_course_id=c.external_course_id,
            title=c.title,
            kind=c.kind,
            id=c.id,
            offers=None if c.is_shell else offers[c.id],
            auto_complete=completes_on_enrollment(kind=c.kind, has_required_object=c.has_required),
        )
        for c in courses
    }


def _learners(rows) -> list[Learner]:
    return [
        Learner(
            user_id=uid,
            email=(email or "").lower(),
            external_user_id=ext or "",
            profile=None if pid is None else tuple(values),
            label=ext or email or username,
        )
        for uid, username, email, pid, ext, *values in rows
    ]


_LEARNER_COLUMNS = ("id", "username", "email", "learner_profile__id", "learner_profile__external_user_id") + tuple(
    f"learner_profile__{f}" for f in PROFILE_FIELDS
)


def learners_by_external_id(external_ids: set[str]) -> dict[str, Learner]:
    if not external_ids:
        return {}
    User = get_user_model()
    rows = User.objects.filter(learner_profile__external_user_id__in=external_ids).values_list(*_LEARNER_COLUMNS)
    return {learner.external_user_id: learner for learner in _learners(rows)}


def learners_by_email(emails: set[str]) -> dict[str, list[Learner]]:
    """E-mail (lowercased) -> every account with it; Django does not make e-mails unique."""
    if not emails:
        return {}
    User = get_user_model()
    rows = (
        User.objects.annotate(email_lower=Lower("email")).filter(email_lower__in=emails).values_list(*_LEARNER_COLUMNS)
    )
    found: dict[str, list[Learner]] = {}
    for learner in _learners(rows):
        found.setdefault(learner.email, []).append(learner)
    return found


def enrollments_existing(
    user_ids: set[int], course_ids: set[int], *, exclude_job: int | None
) -> dict[tuple[int, int], set[int]]:
    """(user, course) -> credit type ids already awarded, for enrollments this job did not write itself."""
    if not user_ids or not course_ids:
        return {}
    found: dict[tuple[int, int], set[int]] = {}
    enrollments = Enrollment.objects.filter(user_id__in=user_ids, course_id__in=course_ids)
    if exclude_job is not None:
        enrollments = enrollments.exclude(import_job_id=exclude_job)
    for user_id, course_id in enrollments.values_list("user_id", "course_id"):
        found[(user_id, course_id)] = set()
    if found:
        awards = CreditAward.objects.filter(enrollment__in=enrollments).values_list(
            "enrollment__user_id", "enrollment__course_id", "credit_type_id"
        )
        for user_id, course_id, type_id in awards:
            found[(user_id, course_id)].add(type_id)
    return found


def pending_existing(
    emails: set[str], external_ids: set[str], course_ids: set[int], *, exclude_job: int | None
) -> set[tuple[str, int]]:
    """('e:'+email or 'x:'+external id, course id) of rows already waiting in the holding table."""
    if not course_ids or not (emails or external_ids):
        return set()
    from django.db.models import Q

    pending = PendingRecord.objects.filter(status=PendingRecord.STATUS_PENDING, course_id__in=course_ids).filter(
        Q(email__in=emails) | Q(external_user_id__in=external_ids)
    )
    if exclude_job is not None:
        pending = pending.exclude(import_job_id=exclude_job)
    found = set()
    for email, ext, course_id in pending.values_list("email", "external_user_id", "course_id"):
        if email:
            found.add(("e:" + email, course_id))
        if ext:
            found.add(("x:" + ext, course_id))
    return found


def usernames_taken(names: set[str]) -> set[str]:
    if not names:
        return set()
    return set(get_user_model().objects.filter(username__in=names).values_list("username", flat=True))


def profiles_missing(user_ids: set[int]) -> set[int]:
    have = set(LearnerProfile.objects.filter(user_id__in=user_ids).values_list("user_id", flat=True))
    return user_ids - have
