from django.core.validators import RegexValidator
from django.db import models

from core.records import Source, TimestampedRecord


class CreditType(models.Model):
    """A site-wide kind of credit (AMA PRA Category 1, ANCC, ...), named in CSVs by machine name."""

    machine_name = models.CharField(
        max_length=64,
        unique=True,
        validators=[RegexValidator(r"^[a-z0-9_]+$", "Use lowercase letters, digits and underscores.")],
    )
    name = models.CharField(max_length=200)
    unit = models.CharField(max_length=50, default="credits")

    class Meta:
        ordering = ["machine_name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.machine_name})"


class CreditAward(TimestampedRecord):
    """Credit of one type earned on one enrollment."""

    # No index of its own: the (enrollment, credit_type) unique constraint's index serves it.
    enrollment = models.ForeignKey(
        "enrollments.Enrollment", on_delete=models.CASCADE, related_name="credit_awards", db_index=False
    )
    credit_type = models.ForeignKey(CreditType, on_delete=models.PROTECT, related_name="awards")
    credits = models.DecimalField(max_digits=6, decimal_places=2)
    credit_expiration = models.DateField(null=True, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.NATIVE)
    import_job = models.ForeignKey(
        "lms_import.ImportJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="credit_awards",
        # Jobs are never deleted (a trigger refuses it) and a job's records are written together: no foreign-key
        # check per record, and a BRIN index on PostgreSQL (lms_import migration 0009).
        db_constraint=False,
        db_index=False,
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["enrollment", "credit_type"], name="credit_award_one_per_type"),
            models.CheckConstraint(condition=models.Q(credits__gte=0), name="credit_award_credits_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.credits} {self.credit_type.machine_name}"
