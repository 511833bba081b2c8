"""The forms of the web workflow: upload, confirm (with the auto-complete acknowledgment) and unlock."""

from django import forms

from courses.models import Course
from lms_import.models import ImportJob
from lms_import.services import upload_refusal, upload_too_large


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


class ConfirmForm(forms.Form):
    acknowledge = forms.BooleanField(required=False)


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
