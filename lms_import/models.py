import uuid
from pathlib import PurePath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


def upload_path(instance: "ImportJob", filename: str) -> str:
    # Uploads are stored under random names; the admin's file name is kept only as data.
    return f"imports/{uuid.uuid4().hex}.csv"


def report_path(instance: "ImportJob", filename: str) -> str:
    return f"reports/{uuid.uuid4().hex}.csv"


class ImportJob(models.Model):
    """One uploaded file and everything done with it (SPEC §6)."""

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        VALIDATING = "validating", "Validating"
        VALIDATED = "validated", "Validated"
        QUEUED = "queued", "Queued"
        IMPORTING = "importing", "Importing"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        REVERTED = "reverted", "Reverted"

    class Importer(models.TextChoices):
        COURSE = "course", "Course-level importer"
        GLOBAL = "global", "Global (legacy) importer"

    class AutoConfirm(models.TextChoices):
        NEVER = "never", "Never: someone confirms"
        WHEN_CLEAN = "when_clean", "When the file is clean"

    # Where a job's file came from (History's "Source"); an inbox job's is "inbox: <folder>/<file name>".
    SOURCE_WEB = "web upload"
    SOURCE_CLI = "command line"
    SOURCE_API = "API"

    ACTIVE_STATUSES = (Status.UPLOADED, Status.VALIDATING, Status.QUEUED, Status.IMPORTING)

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.UPLOADED, db_index=True)
    importer = models.CharField(max_length=10, choices=Importer.choices, default=Importer.COURSE)
    course = models.ForeignKey(
        "courses.Course", null=True, blank=True, on_delete=models.SET_NULL, related_name="import_jobs"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="import_jobs"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    file = models.FileField(upload_to=upload_path, blank=True, max_length=255)
    source_path = models.CharField(max_length=1024, blank=True, help_text="File read in place by the command line.")
    source = models.CharField(
        max_length=300, blank=True, help_text="How the file came: web upload, command line, API, or inbox: folder/file."
    )
    inbox_file = models.CharField(
        max_length=1024,
        blank=True,
        help_text="The inbox file this job was made from, relative to IMPORT_INBOX_DIR: claimed, then done or failed.",
    )
    original_filename = models.CharField(max_length=255)
    file_size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    encoding = models.CharField(max_length=32, blank=True)
    delimiter = models.CharField(max_length=8, blank=True)
    sheet = models.CharField(
        max_length=100, blank=True, help_text="A workbook's sheet to read (its first, if blank); the one read."
    )

    dry_run = models.BooleanField(default=False)
    skip_invalid = models.BooleanField(default=False)
    create_accounts = models.BooleanField(default=False)
    allow_auto_complete = models.BooleanField(default=False)
    # when_clean: a validation without an invalid row or an unacknowledged W_AUTO_COMPLETE confirms itself.
    auto_confirm = models.CharField(max_length=12, choices=AutoConfirm.choices, default=AutoConfirm.NEVER)

    rows_total = models.PositiveIntegerField(default=0)
    rows_valid = models.PositiveIntegerField(default=0)
    rows_invalid = models.PositiveIntegerField(default=0)
    rows_skipped = models.PositiveIntegerField(default=0)
    created_enrollments = models.PositiveIntegerField(default=0)
    created_credits = models.PositiveIntegerField(default=0)
    created_pending = models.PositiveIntegerField(default=0)
    created_accounts = models.PositiveIntegerField(default=0)
    created_shells = models.PositiveIntegerField(default=0)
    auto_completed = models.PositiveIntegerField(default=0)

    warnings = models.JSONField(default=list, blank=True)
    errors = models.JSONField(default=list, blank=True, help_text="The first errors; all are in the error report.")
    error_count = models.PositiveIntegerField(default=0)
    error_report = models.FileField(upload_to=report_path, blank=True, max_length=255)
    files_removed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the stored upload and error report were deleted (IMPORT_RETENTION_DAYS)."
    )

    # The validation's progress; an apply's live figures are on the lock row (lms_import.selectors.job_progress).
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    validate_started_at = models.DateTimeField(null=True, blank=True)
    validate_finished_at = models.DateTimeField(null=True, blank=True)
    apply_started_at = models.DateTimeField(null=True, blank=True)
    apply_finished_at = models.DateTimeField(null=True, blank=True)
    failure_code = models.CharField(max_length=32, blank=True)
    failure_message = models.TextField(blank=True)
    # A confirmed import that found another one writing waits for its turn (queued, retried with back-off): the
    # import it waits for, shown on its page. Cleared when it starts.
    waiting_for = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # How many times a worker started checking the file: a validation whose worker died runs once more, then it is
    # lost (lms_import.services.VALIDATION_ATTEMPTS).
    validate_attempts = models.PositiveSmallIntegerField(default=0)
    reverted_at = models.DateTimeField(null=True, blank=True)
    reverted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The column mapping the file was read with (SPEC §13): the saved one chosen, if any, and the mapping as applied
    # (kept even if the saved one is edited or deleted later). Empty: the file's own column names.
    mapping = models.ForeignKey(
        "ColumnMapping", null=True, blank=True, on_delete=models.SET_NULL, related_name="import_jobs"
    )
    mapping_applied = models.JSONField(
        default=dict, blank=True, help_text="Schema column -> the file's column header, as this job read the file."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("import_course_records", "Can upload, preview and import course records")]

    def __str__(self) -> str:
        return f"Import #{self.pk} ({self.original_filename})"

    @property
    def display_name(self) -> str:
        return PurePath(self.original_filename).name

    @property
    def blocking_auto_complete(self) -> bool:
        """W_AUTO_COMPLETE applies and nobody has acknowledged it yet."""
        return not self.allow_auto_complete and any(w.get("code") == "W_AUTO_COMPLETE" for w in self.warnings)

    @property
    def can_apply(self) -> bool:
        """A validated job can be confirmed when nothing invalid would be dropped without the admin asking."""
        has_rows_to_write = self.rows_valid > 0
        return (
            self.status == self.Status.VALIDATED
            and has_rows_to_write
            and (self.rows_invalid == 0 or self.skip_invalid)
            and not self.failure_code
        )

    @property
    def validate_seconds(self) -> float | None:
        if self.validate_started_at and self.validate_finished_at:
            return (self.validate_finished_at - self.validate_started_at).total_seconds()
        return None

    @property
    def apply_seconds(self) -> float | None:
        if self.apply_started_at and self.apply_finished_at:
            return (self.apply_finished_at - self.apply_started_at).total_seconds()
        return None


class ColumnMapping(models.Model):
    """A saved column mapping (SPEC §13): which column of a file holds each of the importer's columns.

    `columns` is {schema column: the file's header text}, e.g. {"external_email": "Participant Email"}. It is
    applied while the header is read (lms_import.importer.schema.header_read), for CSV files and workbooks alike,
    by every face: the upload form, --mapping NAME, the API's mapping, an inbox folder's mapping.txt.
    """

    name = models.CharField(max_length=100, unique=True)
    columns = models.JSONField(
        default=dict,
        help_text='Each importer column and the file\'s header that holds it, e.g. {"external_email": "Participant '
        'Email", "complete": "Done"}.',
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from lms_import.importer.schema import mapping_problems  # the schema knows its columns

        problems = mapping_problems(self.columns)
        if problems:
            raise ValidationError({"columns": problems})


class ImportLock(models.Model):
    """The one row per scope that lets a single import write at a time (SPEC §7)."""

    SCOPE_COURSE_RECORDS = "course_records"

    scope = models.CharField(max_length=64, unique=True)
    job = models.ForeignKey(ImportJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    holder = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    token = models.CharField(max_length=64, blank=True)
    acquired_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The running apply's progress lives here, not on the job: every row the apply writes references the
    # job row, and updating that row under the apply's foreign-key locks doubles the cost of the commit.
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.scope} lock ({'held' if self.token else 'free'})"

    @property
    def is_held(self) -> bool:
        return bool(self.token)


class AuditEvent(models.Model):
    """Who did what: uploads, confirmations, unlocks, lock takeovers, reverts, login lockouts and admin changes."""

    class Action(models.TextChoices):
        UPLOAD = "upload", "Upload"
        CONFIRM = "confirm", "Confirm import"
        CANCEL = "cancel", "Cancel"
        APPLY = "apply", "Import applied"
        UNLOCK = "unlock", "Unlock"
        TAKEOVER = "takeover", "Stale lock taken over"
        LOST = "lost", "Found lost"
        REVERT = "revert", "Revert"
        LOCKOUT = "lockout", "Login locked out"  # django-axes: too many failed logins (lms_import/signals.py)
        # Changes made in the Django admin (forms, actions, django-import-export imports).
        ADMIN_ADD = "admin_add", "Admin: added"
        ADMIN_CHANGE = "admin_change", "Admin: changed"
        ADMIN_DELETE = "admin_delete", "Admin: deleted"
        ADMIN_IMPORT = "admin_import", "Admin: imported a spreadsheet"
        MAPPING = "mapping", "Columns mapped, checked again"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=12, choices=Action.choices)
    job = models.ForeignKey(ImportJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.get_action_display()} by {self.actor or 'system'}"


class FindingGroup(models.Model):
    """How often one finding came back in a job's file: its code, column and value, with one example line.

    The pass counts its findings by (code, column, value) as it checks them (lms_import.importer.report), so that
    the job page can sum them by code with one grouped query (selectors.job_findings_summary) instead of reading
    tens of thousands of findings. Values beyond the pass's distinct-value budget are counted under `other`.
    """

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="finding_groups")
    code = models.CharField(max_length=40)
    column = models.CharField(max_length=100, blank=True)
    value = models.CharField(max_length=200, blank=True)
    other = models.BooleanField(default=False, help_text="The findings of this code and column beyond the budget.")
    count = models.PositiveIntegerField()
    line = models.PositiveIntegerField(null=True, blank=True, help_text="The first line it was found on.")
    message = models.TextField(blank=True, help_text="The first such finding's message.")

    class Meta:
        indexes = [models.Index(fields=["job", "code"])]

    def __str__(self) -> str:
        return f"{self.count} × {self.code} ({self.column} = {self.value})"


class RevertRun(models.Model):
    """A revert asked for on a succeeded job, run by a worker (lms_import.services.import_job_revert_later).

    Its own row, not the job's: the revert's transaction holds the job row and the lock row until it commits,
    and the worker's heartbeat and progress must reach the pages meanwhile.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Reverting"
        DONE = "done", "Reverted"
        FAILED = "failed", "Failed"

    job = models.OneToOneField(ImportJob, on_delete=models.CASCADE, related_name="revert_run")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    failure_message = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"Revert of import #{self.job_id} ({self.status})"


class RevertKept(models.Model):
    """A record a revert kept because it changed since the import, and why: every one, for the result page and its
    CSV download (the audit event lists the first ones)."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="revert_kept")
    kind = models.CharField(max_length=12)
    record = models.CharField(max_length=300)
    reason = models.CharField(max_length=300)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.record}: {self.reason}"
