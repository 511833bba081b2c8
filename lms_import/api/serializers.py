"""What the API reads (an upload, a confirmation) and writes (a job, its findings).

A job is the command line's --format json object (lms_import.selectors.job_summary: SPEC §8's keys) plus its
progress, how it was made, and links. The declared fields describe it for the OpenAPI schema.
"""

from django.urls import reverse
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from core.findings import F_COURSE_REQUIRED
from courses.models import Course
from lms_import.models import ColumnMapping, ImportJob, RevertRun
from lms_import.selectors import (
    job_cancellable,
    job_confirmable,
    job_needs_acknowledgment,
    job_progress_data,
    job_status_display,
    job_summary,
    job_typed_confirmations,
    revert_confirm_count,
    revert_run_progress,
)
from lms_import.services import MappingRefused, column_mapping_find

LIST_ERRORS = 10  # findings per job in a list; /errors/ pages through all that are kept


class FindingSerializer(serializers.Serializer):
    line = serializers.IntegerField(allow_null=True, help_text="The line in the file (the header is line 1).")
    code = serializers.CharField(help_text="F_* (the file), E_* (a row), or the job's failure code.")
    column = serializers.CharField(allow_null=True, allow_blank=True)
    value = serializers.CharField(allow_null=True, allow_blank=True)
    message = serializers.CharField()


class WarningSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    count = serializers.IntegerField()


class RowsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    valid = serializers.IntegerField()
    invalid = serializers.IntegerField()
    skipped = serializers.IntegerField()


class CreatedSerializer(serializers.Serializer):
    enrollments = serializers.IntegerField()
    credits = serializers.IntegerField()
    pending = serializers.IntegerField()
    accounts = serializers.IntegerField()
    shells = serializers.IntegerField()


class FailureSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField()
    total = serializers.IntegerField()


class LinksSerializer(serializers.Serializer):
    self = serializers.URLField()
    page = serializers.URLField(help_text="The job's page in the browser.")
    errors = serializers.URLField()
    error_report = serializers.URLField(allow_null=True, help_text="The error report CSV, if the job has one.")
    confirm = serializers.URLField(allow_null=True, help_text="POST here to import (when the job waits for it).")
    cancel = serializers.URLField(allow_null=True)
    revert = serializers.URLField(allow_null=True, help_text="Site admins, for a succeeded import.")


class MappingUsedSerializer(serializers.Serializer):
    name = serializers.CharField(allow_null=True, help_text="The saved mapping's name; null if chosen without one.")
    columns = serializers.DictField(
        child=serializers.CharField(), help_text="{importer column: the file's heading}, as the file was read."
    )


class JobSerializer(serializers.Serializer):
    """An import job: the command line's JSON keys (SPEC §8) plus progress, how it was made, and links."""

    job = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ImportJob.Status.choices)
    importer = serializers.ChoiceField(choices=ImportJob.Importer.choices)
    course = serializers.CharField(allow_null=True, help_text="The course's external_course_id.")
    dry_run = serializers.BooleanField()
    encoding = serializers.CharField(allow_blank=True)
    rows = RowsSerializer()
    created = CreatedSerializer()
    auto_completed = serializers.IntegerField()
    errors = FindingSerializer(many=True, help_text="The first errors (a list has the first 10; see links.errors).")
    warnings = WarningSerializer(many=True)
    duration_s = serializers.FloatField()
    error_count = serializers.IntegerField(help_text="Every error found; the error report has them all.")
    failure = FailureSerializer(allow_null=True)
    waiting_for = serializers.IntegerField(allow_null=True, help_text="The import this queued one waits for.")
    progress = ProgressSerializer()
    file = serializers.CharField(help_text="The file's name as it was uploaded.")
    source = serializers.CharField(help_text="web upload, command line, API, or inbox: folder/file.")
    mapping = MappingUsedSerializer(
        allow_null=True, help_text="The column mapping the file was read with (SPEC §13); null without one."
    )
    created_by = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    skip_invalid = serializers.BooleanField()
    create_accounts = serializers.BooleanField()
    allow_auto_complete = serializers.BooleanField()
    auto_confirm = serializers.ChoiceField(choices=ImportJob.AutoConfirm.choices)
    confirmable = serializers.BooleanField(help_text="It waits for a confirmation (POST links.confirm).")
    needs_acknowledgment = serializers.BooleanField(help_text="Confirm it with allow_auto_complete=true.")
    status_label = serializers.CharField(
        help_text='The status as the pages say it: "Imported, 27,887 skipped", "Needs fixes", "Failed, nothing '
        'imported".'
    )
    confirm_counts = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="The numbers to confirm with, above IMPORT_CONFIRM_THRESHOLD: confirm_skipped (rows to skip) and "
        "confirm_accounts (accounts to create), each to be sent to links.confirm.",
    )
    revert = serializers.DictField(
        allow_null=True, help_text="A revert asked for: status (queued, running, done, failed), done, total, elapsed."
    )
    revert_confirm_count = serializers.IntegerField(
        allow_null=True, help_text="For a succeeded import, the confirm_count its revert needs (null: none needed)."
    )
    links = LinksSerializer()

    def to_representation(self, job: ImportJob) -> dict:
        request = self.context["request"]
        progress = job_progress_data(job=job, lock=self.context["lock"])

        def url(name: str) -> str:
            return request.build_absolute_uri(reverse(name, args=[job.pk]))

        confirmable = job_confirmable(job=job)
        revertible = job.status == ImportJob.Status.SUCCEEDED and not job.dry_run and request.user.is_superuser
        run = RevertRun.objects.filter(job=job).first() if request.user.is_superuser else None
        return job_summary(job=job, errors=self.context.get("errors")) | {
            "progress": {"done": progress["done"], "total": progress["total"]},
            "file": job.original_filename,
            "source": job.source,
            "mapping": {"name": job.mapping.name if job.mapping else None, "columns": job.mapping_applied}
            if job.mapping_applied
            else None,
            "created_by": job.created_by.get_username() if job.created_by else None,
            "created_at": serializers.DateTimeField().to_representation(job.created_at),
            "skip_invalid": job.skip_invalid,
            "create_accounts": job.create_accounts,
            "allow_auto_complete": job.allow_auto_complete,
            "auto_confirm": job.auto_confirm,
            "confirmable": confirmable,
            "needs_acknowledgment": job_needs_acknowledgment(job=job),
            "status_label": job_status_display(job=job).label,
            "confirm_counts": {asked.field: asked.count for asked in job_typed_confirmations(job=job)}
            if confirmable
            else {},
            "revert": revert_run_progress(run=run, lock=self.context["lock"]) if run else None,
            "revert_confirm_count": revert_confirm_count(job=job) if revertible else None,
            "links": {
                "self": url("api:import-detail"),
                "page": url("lms_import:job"),
                "errors": url("api:import-errors"),
                "error_report": url("api:import-error-report") if job.error_report else None,
                "confirm": url("api:import-confirm") if confirmable else None,
                "cancel": url("api:import-cancel") if job_cancellable(job=job) else None,
                "revert": url("api:import-revert") if revertible else None,
            },
        }


class UploadSerializer(serializers.Serializer):
    """POST /api/v1/imports/ (multipart/form-data), the fields of the web's upload form and the command line's flags."""

    file = serializers.FileField(
        allow_empty_file=True,
        help_text="The CSV file or workbook (.xlsx, .xls, .ods) (F_NOT_CSV, F_EMPTY, F_TOO_LARGE).",
    )
    sheet = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=100,
        help_text="A workbook's sheet to read (its first, if left out); a name it does not have fails with F_NOT_CSV.",
    )
    importer = serializers.ChoiceField(choices=ImportJob.Importer.choices, default=ImportJob.Importer.COURSE)
    course = serializers.CharField(
        required=False, allow_blank=True, help_text="external_course_id; required by the course-level importer."
    )
    skip_invalid = serializers.BooleanField(default=False)
    create_accounts = serializers.BooleanField(default=False)
    allow_auto_complete = serializers.BooleanField(default=False, help_text="Acknowledge W_AUTO_COMPLETE now.")
    mapping = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="A saved column mapping's name (SPEC §13): the file's header is read with it; an unknown name is "
        "E_VALUE_INVALID.",
    )
    auto_confirm = serializers.ChoiceField(
        choices=ImportJob.AutoConfirm.choices,
        default=ImportJob.AutoConfirm.NEVER,
        help_text="when_clean: a file without an invalid row (and nothing to acknowledge) is imported at once.",
    )

    def validate_mapping(self, value: str) -> ColumnMapping | None:
        if not value.strip():
            return None
        try:
            return column_mapping_find(name=value)
        except MappingRefused as refused:
            raise serializers.ValidationError(str(refused)) from None

    def validate(self, data: dict) -> dict:
        data["course_object"] = None
        if data.get("importer") == ImportJob.Importer.GLOBAL:
            return data  # every row names its own course
        external_id = (data.get("course") or "").strip()
        if not external_id:
            message = "The course-level importer needs a course: send course=<external_course_id>, or importer=global."
            raise serializers.ValidationError({"course": ErrorDetail(message, code=F_COURSE_REQUIRED)})
        course = Course.objects.filter(external_course_id=external_id).first()
        if course is None or course.kind != Course.KIND_COURSE:
            what = "is a course shell; shells take only the global importer" if course else "matches no course"
            message = f"The course id {external_id!r} {what}."
            raise serializers.ValidationError({"course": ErrorDetail(message, code=F_COURSE_REQUIRED)})
        data["course_object"] = course
        return data


class ConfirmSerializer(serializers.Serializer):
    allow_auto_complete = serializers.BooleanField(
        default=False, help_text="Acknowledge W_AUTO_COMPLETE (the course completes enrollments on enrollment)."
    )
    confirm_skipped = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="The number of rows to skip, when it is above IMPORT_CONFIRM_THRESHOLD (the job's confirm_counts).",
    )
    confirm_accounts = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="The number of accounts to create, when it is above IMPORT_CONFIRM_THRESHOLD (confirm_counts).",
    )


class RevertRequestSerializer(serializers.Serializer):
    confirm_count = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Above IMPORT_CONFIRM_THRESHOLD records: the number of records the job created (the sum of its "
        "`created` counts), as a typed confirmation.",
    )


class RevertSerializer(serializers.Serializer):
    job = JobSerializer()
    revert = serializers.DictField(
        help_text="The queued revert: status (queued, running, done, failed), done, total, percent, elapsed."
    )


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    errors = FindingSerializer(many=True, required=False)
