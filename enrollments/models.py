from django.conf import settings
from django.db import models

from core.records import Source, TimestampedRecord

# The learner's PARS data, in the order the importer carries it (files, pending records, profile fills).
PROFILE_FIELDS = ("dob_month", "dob_day", "licensing_state", "license_id", "certifying_board", "board_id")


class LearnerProfile(models.Model):
    """What the LMS knows of a learner beyond auth.User; PARS data is text so leading zeros survive."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="learner_profile")
    # Unique through Meta.constraints rather than unique=True: same guarantee, without the extra LIKE index
    # PostgreSQL would get for unique=True, one index less to maintain for every account an import creates.
    external_user_id = models.CharField(max_length=255, null=True, blank=True)
    dob_month = models.CharField("date of birth month", max_length=2, blank=True)
    dob_day = models.CharField("date of birth day", max_length=2, blank=True)
    licensing_state = models.CharField(max_length=64, blank=True)
    license_id = models.CharField("license ID or NPI", max_length=64, blank=True)
    certifying_board = models.CharField(max_length=128, blank=True)
    board_id = models.CharField("certifying board ID", max_length=64, blank=True)
    created_by_job = models.ForeignKey(
        "lms_import.ImportJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="created_profiles",
        # Jobs are never deleted (a trigger refuses it) and a job's records are written together: no foreign-key
        # check per record, and a BRIN index on PostgreSQL (lms_import migration 0009).
        db_constraint=False,
        db_index=False,
        help_text="Set when an import created this learner's account.",
    )

    class Meta:
        # Only the profiles that have an external id are in the index: accounts known by e-mail alone add nothing.
        constraints = [
            models.UniqueConstraint(
                fields=["external_user_id"],
                condition=models.Q(external_user_id__isnull=False),
                name="learner_external_user_id_unique",
            )
        ]

    def __str__(self) -> str:
        return self.external_user_id or str(self.user)


class ParticipantCategory(models.TextChoices):
    PHYSICIAN = "physician", "Physician"
    OTHER = "other", "Other learner"


class Enrollment(TimestampedRecord):
    # No index of its own: the (user, course) unique constraint's index serves look-ups by user.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrollments", db_index=False
    )
    course = models.ForeignKey("courses.Course", on_delete=models.PROTECT, related_name="enrollments")
    enrollment_start = models.DateTimeField(null=True, blank=True)
    enrollment_end = models.DateTimeField(null=True, blank=True)
    complete = models.BooleanField(default=False)
    date_completed = models.DateTimeField(null=True, blank=True)
    attended = models.BooleanField(null=True, blank=True)
    participant_category = models.CharField(max_length=10, choices=ParticipantCategory.choices, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.NATIVE)
    import_job = models.ForeignKey(
        "lms_import.ImportJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="enrollments",
        # Jobs are never deleted (a trigger refuses it) and a job's records are written together: no foreign-key
        # check per record, and a BRIN index on PostgreSQL (lms_import migration 0009).
        db_constraint=False,
        db_index=False,
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "course"], name="enrollment_one_per_course")]

    def __str__(self) -> str:
        return f"{self.user} in {self.course.external_course_id}"


class PendingRecord(TimestampedRecord):
    """One imported CSV row held until its learner has an account (the holding table)."""

    STATUS_PENDING = "pending"
    STATUS_APPLIED = "applied"
    STATUS_CHOICES = [(STATUS_PENDING, "Waiting for an account"), (STATUS_APPLIED, "Applied")]

    import_job = models.ForeignKey(
        "lms_import.ImportJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="pending_records",
        # Jobs are never deleted (a trigger refuses it) and a job's records are written together: no foreign-key
        # check per record, and a BRIN index on PostgreSQL (lms_import migration 0009).
        db_constraint=False,
        db_index=False,
    )
    line = models.PositiveIntegerField(help_text="Line of the imported file.")
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=STATUS_PENDING)
    email = models.CharField(max_length=254, blank=True, db_index=True, help_text="Lowercased.")
    external_user_id = models.CharField(max_length=255, blank=True, db_index=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    course = models.ForeignKey("courses.Course", on_delete=models.CASCADE, related_name="pending_records")
    enrollment_start = models.DateTimeField(null=True, blank=True)
    enrollment_end = models.DateTimeField(null=True, blank=True)
    complete = models.BooleanField(default=False)
    date_completed = models.DateTimeField(null=True, blank=True)
    attended = models.BooleanField(null=True, blank=True)
    participant_category = models.CharField(max_length=10, choices=ParticipantCategory.choices, blank=True)
    credit_type = models.ForeignKey("credits.CreditType", null=True, blank=True, on_delete=models.PROTECT)
    credits = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    credit_expiration = models.DateField(null=True, blank=True)
    dob_month = models.CharField(max_length=2, blank=True)
    dob_day = models.CharField(max_length=2, blank=True)
    licensing_state = models.CharField(max_length=64, blank=True)
    license_id = models.CharField(max_length=64, blank=True)
    certifying_board = models.CharField(max_length=128, blank=True)
    board_id = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.COURSE_IMPORT)
    applied_at = models.DateTimeField(null=True, blank=True)
    enrollment = models.ForeignKey(
        Enrollment, null=True, blank=True, on_delete=models.SET_NULL, related_name="from_pending_records"
    )

    class Meta:
        indexes = [models.Index(fields=["status", "course"], name="pending_status_course")]

    def __str__(self) -> str:
        return f"{self.email or self.external_user_id} → {self.course.external_course_id} (line {self.line})"
