"""Creating enrollments one at a time (native enrollments, pending records), through the completion engine."""

from datetime import date, datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.records import Source
from core.text import email_key
from courses.models import Course
from credits.models import CreditAward

from .engine import completes_on_enrollment, engine_awards
from .models import PROFILE_FIELDS, Enrollment, LearnerProfile, PendingRecord


def enrollment_create(
    *,
    user,
    course: Course,
    enrollment_start: datetime | None = None,
    enrollment_end: datetime | None = None,
    complete: bool = False,
    date_completed: datetime | None = None,
    attended: bool | None = None,
    participant_category: str = "",
    awards: dict[int, tuple[Decimal, date | None]] | None = None,
    source: str = Source.NATIVE,
    import_job=None,
) -> Enrollment:
    """Enroll user in course; in a course with no required course object the engine completes it at once."""
    awards = dict(awards or {})
    now = timezone.now()
    if completes_on_enrollment(
        kind=course.kind, has_required_object=course.course_objects.filter(required=True).exists()
    ):
        complete = True
        date_completed = date_completed or now
        awards = engine_awards({o.credit_type_id: o.max_credits for o in course.offered_credits.all()}, awards)
    enrollment = Enrollment.objects.create(
        user=user,
        course=course,
        enrollment_start=enrollment_start,
        enrollment_end=enrollment_end,
        complete=complete,
        date_completed=date_completed,
        attended=attended,
        participant_category=participant_category,
        source=source,
        import_job=import_job,
    )
    CreditAward.objects.bulk_create(
        CreditAward(
            enrollment=enrollment,
            credit_type_id=type_id,
            credits=credits,
            credit_expiration=expiration,
            source=source,
            import_job=import_job,
            created_at=enrollment.created_at,
            updated_at=enrollment.created_at,
        )
        for type_id, (credits, expiration) in awards.items()
    )
    return enrollment


def pending_records_apply(*, users) -> int:
    """Apply every waiting pending record of these accounts (matched by e-mail or external id); return how many.

    One query finds which of the accounts have waiting records at all (an import may pass thousands of new
    accounts, of which few or none have any); only those are then applied one learner at a time.
    """
    users = list(users)
    external_ids = dict(
        LearnerProfile.objects.filter(user__in=users, external_user_id__isnull=False).values_list(
            "user_id", "external_user_id"
        )
    )
    emails = {email_key(user.email) for user in users if user.email}
    waiting = PendingRecord.objects.filter(status=PendingRecord.STATUS_PENDING).filter(
        Q(email__in=emails) | Q(external_user_id__in=set(external_ids.values()))
    )
    found = set()
    for email, external_id in waiting.values_list("email", "external_user_id"):
        found.update({("e", email), ("x", external_id)})
    applied = 0
    for user in users:
        if ("e", email_key(user.email)) not in found and ("x", external_ids.get(user.pk)) not in found:
            continue
        profile = LearnerProfile.objects.filter(user=user).first()
        external_id = profile.external_user_id if profile else None
        match = Q(email=email_key(user.email)) if user.email else Q(pk__in=[])
        if external_id:
            match |= Q(external_user_id=external_id)
        with transaction.atomic():
            records = list(
                PendingRecord.objects.select_for_update(of=("self",))
                .filter(match, status=PendingRecord.STATUS_PENDING)
                .select_related("course")
                .order_by("course_id", "line")
            )
            if not records:
                continue
            _profile_fill(user, profile, records[0])
            by_course: dict[int, list[PendingRecord]] = {}
            for record in records:
                by_course.setdefault(record.course_id, []).append(record)
            for rows in by_course.values():
                if Enrollment.objects.filter(user=user, course_id=rows[0].course_id).exists():
                    continue  # enrolled some other way meanwhile: the rows stay in the holding table for an admin
                first = rows[0]
                enrollment = enrollment_create(
                    user=user,
                    course=first.course,
                    enrollment_start=first.enrollment_start,
                    enrollment_end=first.enrollment_end,
                    complete=first.complete,
                    date_completed=first.date_completed,
                    attended=first.attended,
                    participant_category=first.participant_category,
                    awards={r.credit_type_id: (r.credits, r.credit_expiration) for r in rows if r.credit_type_id},
                    source=first.source,
                    import_job=first.import_job,
                )
                PendingRecord.objects.filter(pk__in=[r.pk for r in rows]).update(
                    status=PendingRecord.STATUS_APPLIED,
                    applied_at=enrollment.created_at,
                    enrollment=enrollment,
                    updated_at=enrollment.created_at,
                )
                applied += len(rows)
    return applied


def _profile_fill(user, profile: LearnerProfile | None, record: PendingRecord) -> None:
    """The pending row's PARS data goes where the profile is blank. Queries, not save(): no signal re-entry."""
    if profile is None:
        external_id = record.external_user_id or None
        if external_id and LearnerProfile.objects.filter(external_user_id=external_id).exists():
            external_id = None
        values = {name: getattr(record, name) for name in PROFILE_FIELDS}
        LearnerProfile.objects.bulk_create([LearnerProfile(user=user, external_user_id=external_id, **values)])
        return
    blanks = {
        name: getattr(record, name) for name in PROFILE_FIELDS if not getattr(profile, name) and getattr(record, name)
    }
    if blanks:
        LearnerProfile.objects.filter(pk=profile.pk).update(**blanks)
