"""The forms of the web workflow: upload, confirm (with the auto-complete acknowledgment) and unlock."""

from django import forms

from courses.models import Course
from lms_import.models import ColumnMapping, ImportJob
from lms_import.services import SCHEMA_COLUMNS, upload_refusal, upload_too_large


def too_large_message(size: int, limit: int) -> str:
    finding = upload_too_large(size=size, limit=limit)
    return f"{finding.code}: {finding.message}"


class CourseChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, course: Course) -> str:
        return f"{course.external_course_id} — {course.title}"


class UploadForm(forms.Form):
    """The upload form. The file comes last on purpose: when an upload is refused for its size, Django
    stops reading at the file, so the choices sent before it are kept and shown again."""

    importer = forms.ChoiceField(
        label="Importer",
        choices=ImportJob.Importer.choices,
        initial=ImportJob.Importer.COURSE,
        help_text="Course-level: records of one course, counted in PARS. Global (legacy): every row names its "
        "course; unknown courses become course shells; never in PARS.",
    )
    course = CourseChoiceField(
        label="Course",
        queryset=Course.objects.filter(kind=Course.KIND_COURSE).order_by("external_course_id"),
        to_field_name="external_course_id",
        required=False,
        empty_label="— choose a course —",
        help_text="Needed by the course-level importer.",
    )
    skip_invalid = forms.BooleanField(
        label="Skip invalid rows",
        required=False,
        help_text="Import the valid rows and leave the invalid ones out (they are all in the error report).",
    )
    create_accounts = forms.BooleanField(
        label="Create accounts for unknown learners",
        required=False,
        help_text="Otherwise their rows wait in the holding table until the account exists.",
    )
    mapping = forms.ModelChoiceField(
        label="Column mapping",
        queryset=ColumnMapping.objects.order_by("name"),
        to_field_name="name",
        required=False,
        empty_label="— none: the file's own column names —",
        help_text="A saved mapping, for files whose columns are named otherwise (saved on an import's page, or in "
        "the admin).",
    )
    csv_file = forms.FileField(
        label="CSV file",
        help_text="A CSV file (first line the header; comma, semicolon or tab separated; UTF-8 or Windows-1252) or a "
        "workbook (.xlsx, .xls, .ods: its first sheet).",
    )

    def clean_csv_file(self):
        upload = self.cleaned_data["csv_file"]
        refusal = upload_refusal(upload=upload)  # the API and the inbox refuse with the same check
        if refusal is not None:
            raise forms.ValidationError(f"{refusal.code}: {refusal.message}")
        return upload

    def clean(self):
        data = super().clean()
        if data.get("importer") == ImportJob.Importer.COURSE and not data.get("course"):
            self.add_error("course", "Choose the course to import into: the course-level importer needs one.")
        if data.get("importer") == ImportJob.Importer.GLOBAL:
            data["course"] = None  # every row names its own course
        return data


NOT_IN_FILE = ""


class MappingForm(forms.Form):
    """The mapping step (SPEC §13): for each of the importer's columns, a column of the file or "not in the file",
    and an optional name to save the mapping under."""

    save_as = forms.CharField(
        label="Save this mapping as",
        required=False,
        max_length=100,
        help_text="Optional: a name to choose this mapping by on the next upload (and with --mapping, the API's "
        "mapping, an inbox folder's mapping.txt).",
    )

    def __init__(self, *args, columns, **kwargs):
        """`columns`: lms_import.services.JobColumns of the job's file."""
        super().__init__(*args, **kwargs)
        choices = [(NOT_IN_FILE, "— not in the file —")]
        for cell, _, samples in columns.columns:
            if cell.strip():
                shown = f" (e.g. {', '.join(s[:30] for s in samples)})" if samples else " (empty)"
                choices.append((cell.strip(), f"{cell.strip()[:60]}{shown}"))
        fields = {}
        for name in SCHEMA_COLUMNS:
            fields[f"column_{name}"] = forms.ChoiceField(
                label=name, choices=choices, required=False, initial=columns.suggested.get(name, NOT_IN_FILE)
            )
        self.fields = fields | dict(self.fields)

    def column_fields(self):
        return [self[f"column_{name}"] for name in SCHEMA_COLUMNS]

    def columns(self) -> dict[str, str]:
        return {name: self.cleaned_data.get(f"column_{name}") or "" for name in SCHEMA_COLUMNS}


class ConfirmForm(forms.Form):
    """The decision card's "Import": the acknowledgment, and the numbers typed above IMPORT_CONFIRM_THRESHOLD.

    The service (import_job_confirm) decides whether they are needed and right; its refusal is shown at the field.
    """

    acknowledge = forms.BooleanField(required=False)
    confirm_skipped = forms.CharField(required=False, max_length=20)
    confirm_accounts = forms.CharField(required=False, max_length=20)

    def _number(self, name: str) -> int | None:
        text = self.cleaned_data.get(name) or ""
        digits = text.replace(",", "").replace(" ", "").replace("\u00a0", "")
        if not digits:
            return None
        if not digits.isdigit():
            raise forms.ValidationError(f"{text!r} is not a number: type it in digits, as the page shows it.")
        return int(digits)

    def clean_confirm_skipped(self) -> int | None:
        return self._number("confirm_skipped")

    def clean_confirm_accounts(self) -> int | None:
        return self._number("confirm_accounts")

    def typed(self) -> dict[str, int | None]:
        """The numbers typed ("27,887" and "27 887" count as 27887), None where nothing was typed."""
        return {name: self.cleaned_data.get(name) for name in ("confirm_skipped", "confirm_accounts")}


LIVE_UNLOCK_REASON = "This import is still sending heartbeats: say why you unlock it (it goes to the audit log)."
LIVE_UNLOCK_CONFIRM = "Tick the box to confirm that you stop an import that is still running."


class UnlockForm(forms.Form):
    """Unlock; a lock that is still live (its heartbeat within the lease) needs a reason and the box ticked, a stale
    one neither."""

    reason = forms.CharField(
        label="Reason (for the audit log)", required=False, max_length=500, widget=forms.TextInput()
    )
    confirm_live = forms.BooleanField(
        label="I understand: this import is still running; unlocking stops it, and nothing of it is committed.",
        required=False,
    )

    def __init__(self, *args, live: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.live = live

    def clean(self):
        data = super().clean()
        if self.live:
            if not (data.get("reason") or "").strip():
                self.add_error("reason", LIVE_UNLOCK_REASON)
            if not data.get("confirm_live"):
                self.add_error("confirm_live", LIVE_UNLOCK_CONFIRM)
        return data
