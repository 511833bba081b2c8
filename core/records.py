"""Pieces every imported record shares: where it came from, and when it was written and last changed."""

from django.db import models
from django.utils import timezone


class Source(models.TextChoices):
    NATIVE = "native", "Native"
    COURSE_IMPORT = "course_import", "Course-level import"
    LEGACY_IMPORT = "legacy_import", "Global (legacy) import"


class TimestampedRecord(models.Model):
    """created_at == updated_at marks a record nothing has changed since it was written.

    Set here rather than with auto_now so that bulk writes can stamp both with one value;
    revert keeps every record whose updated_at moved on.
    """

    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        now = timezone.now()
        if self.created_at is None:
            self.created_at = now
        self.updated_at = now if self.pk else self.created_at
        super().save(*args, **kwargs)
