from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models


class Course(models.Model):
    KIND_COURSE = "course"
    KIND_SHELL = "shell"
    KIND_CHOICES = [(KIND_COURSE, "Course"), (KIND_SHELL, "Course shell (imported record only)")]

    external_course_id = models.CharField(max_length=128, unique=True)
    title = models.CharField(max_length=255)
    kind = models.CharField(max_length=10, choices=KIND_CHOICES, default=KIND_COURSE)
    pars_activity_id = models.CharField(
        "ACCME PARS activity ID", max_length=64, blank=True, help_text="Kept as text: leading zeros matter."
    )
    certificate_enabled = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by_job = models.ForeignKey(
        "lms_import.ImportJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="shells",
        # Jobs are never deleted (a trigger refuses it) and a job's records are written together: no foreign-key
        # check per record, and a BRIN index on PostgreSQL (lms_import migration 0009).
        db_constraint=False,
        db_index=False,
        help_text="The global import that created this shell.",
    )

    class Meta:
        ordering = ["external_course_id"]

    def __str__(self) -> str:
        return f"{self.title} ({self.external_course_id})"

    @property
    def is_shell(self) -> bool:
        return self.kind == self.KIND_SHELL

    def clean(self) -> None:
        if self.is_shell and self.certificate_enabled:
            raise ValidationError({"certificate_enabled": "Course shells never have certificates."})


class CourseObject(models.Model):
    """A step of a course. A required step stops the completion engine from completing on enrollment."""

    KIND_CHOICES = [
        ("pre_test", "Pre-test"),
        ("content", "Content"),
        ("evaluation", "Evaluation"),
        ("post_test", "Post-test"),
        ("credit_claim", "Credit claim"),
    ]

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="course_objects")
    title = models.CharField(max_length=255)
    kind = models.CharField(max_length=20, choices=KIND_CHOICES, default="content")
    required = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["course", "position", "id"]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs):
        if self.course.is_shell:
            raise ValidationError("Course shells cannot have course objects.")
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if self.course_id and self.course.is_shell:
            raise ValidationError("Course shells cannot have course objects.")


class CourseCredit(models.Model):
    """A credit type a course offers, and how much of it a learner can earn."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="offered_credits")
    credit_type = models.ForeignKey("credits.CreditType", on_delete=models.PROTECT, related_name="offers")
    max_credits = models.DecimalField(max_digits=6, decimal_places=2)
    variable = models.BooleanField(default=False, help_text="Learners may claim less than the maximum.")
    increment = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal("0.25"))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["course", "credit_type"], name="course_credit_one_per_type"),
            models.CheckConstraint(condition=models.Q(max_credits__gte=0), name="course_credit_max_not_negative"),
            models.CheckConstraint(condition=models.Q(increment__gt=0), name="course_credit_increment_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.course.external_course_id}: {self.max_credits} {self.credit_type.machine_name}"
