"""Learners and course records in the admin. Enrollments export as spreadsheets but never import: the course
record importer is the only way to import course records. Edits move a record's updated_at, so a later revert
of the import that made it keeps it."""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils.html import format_html
from import_export.admin import ExportActionModelAdmin

from credits.models import CreditAward
from lms_import.admin_support import AuditedAdmin, SpreadsheetAdmin, audit_admin
from lms_import.models import AuditEvent

from .models import Enrollment, LearnerProfile, PendingRecord
from .resources import EnrollmentResource
from .services import enrollment_create, pending_records_apply


class CreditAwardInline(admin.TabularInline):
    model = CreditAward
    extra = 0
    fields = ("credit_type", "credits", "credit_expiration", "source", "import_job", "updated_at")
    readonly_fields = ("source", "import_job", "updated_at")


@admin.register(Enrollment)
class EnrollmentAdmin(SpreadsheetAdmin, ExportActionModelAdmin):
    resource_classes = [EnrollmentResource]
    list_display = (
        "id",
        "user",
        "course",
        "complete",
        "date_completed",
        "participant_category",
        "source",
        "import_job",
    )
    list_filter = ("source", "complete", "participant_category", "course__kind")
    search_fields = (
        "user__username",
        "user__email",
        "user__learner_profile__external_user_id",
        "course__external_course_id",
        "course__title",
    )
    list_select_related = ("user", "course", "import_job")
    raw_id_fields = ("user", "course")
    date_hierarchy = "created_at"
    fields = (
        "user",
        "course",
        "enrollment_start",
        "enrollment_end",
        "complete",
        "date_completed",
        "attended",
        "participant_category",
        "source",
        "import_job",
        "created_at",
        "updated_at",
        "certificate",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user__learner_profile")

    def get_readonly_fields(self, request, obj=None):
        fixed = ("source", "import_job", "created_at", "updated_at", "certificate")
        return fixed + (("user", "course") if obj else ())

    def get_inlines(self, request, obj):
        # A new enrollment gets its credit from the completion engine; credit is edited afterwards.
        return [CreditAwardInline] if obj else []

    @admin.display(description="Certificate")
    def certificate(self, enrollment: Enrollment) -> str:
        if not enrollment.pk:
            return "—"
        return format_html(
            '<a href="{}">Certificate page</a>', reverse("enrollments:certificate", args=[enrollment.pk])
        )

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        # Through the service, so that the completion engine applies as it does everywhere else.
        created = enrollment_create(
            user=obj.user,
            course=obj.course,
            enrollment_start=obj.enrollment_start,
            enrollment_end=obj.enrollment_end,
            complete=obj.complete,
            date_completed=obj.date_completed,
            attended=obj.attended,
            participant_category=obj.participant_category,
        )
        obj.pk = created.pk
        obj._state.adding = False
        obj.refresh_from_db()


@admin.register(PendingRecord)
class PendingRecordAdmin(SpreadsheetAdmin, ExportActionModelAdmin):
    """The holding table: rows for learners without an account, applied when the account appears."""

    list_display = ("id", "email", "external_user_id", "course", "line", "status", "import_job", "created_at")
    list_filter = ("status", "source")
    search_fields = ("email", "external_user_id", "first_name", "last_name", "course__external_course_id")
    list_select_related = ("course", "import_job")
    raw_id_fields = ("course",)
    readonly_fields = (
        "import_job",
        "line",
        "status",
        "source",
        "applied_at",
        "enrollment",
        "created_at",
        "updated_at",
    )
    actions = ["apply_to_accounts"]

    def has_add_permission(self, request) -> bool:
        return False  # rows arrive through the course record importer only

    @admin.action(description="Apply selected rows to existing accounts (matched by e-mail or external id)")
    def apply_to_accounts(self, request, queryset):
        waiting = queryset.filter(status=PendingRecord.STATUS_PENDING)
        emails = {e for e in waiting.values_list("email", flat=True) if e}
        external_ids = {u for u in waiting.values_list("external_user_id", flat=True) if u}
        users = (
            get_user_model()
            .objects.annotate(email_lower=Lower("email"))
            .filter(Q(email_lower__in=emails) | Q(learner_profile__external_user_id__in=external_ids))
            .distinct()
        )
        applied = pending_records_apply(users=list(users))
        audit_admin(
            request,
            AuditEvent.Action.ADMIN_CHANGE,
            model="enrollments.PendingRecord",
            admin_action="apply_to_accounts",
            selected=queryset.count(),
            applied=applied,
        )
        level = messages.SUCCESS if applied else messages.WARNING
        self.message_user(request, f"{applied} rows of the holding table were applied to existing accounts.", level)


@admin.register(LearnerProfile)
class LearnerProfileAdmin(AuditedAdmin):
    list_display = (
        "external_user_id",
        "user",
        "email",
        "dob",
        "licensing_state",
        "license_id",
        "certifying_board",
        "board_id",
        "created_by_job",
    )
    list_filter = ("certifying_board", "licensing_state")
    search_fields = ("external_user_id", "user__username", "user__email", "user__first_name", "user__last_name")
    list_select_related = ("user", "created_by_job")
    raw_id_fields = ("user",)
    readonly_fields = ("created_by_job",)

    @admin.display(description="E-mail", ordering="user__email")
    def email(self, profile: LearnerProfile) -> str:
        return profile.user.email

    @admin.display(description="Date of birth (MM/DD)")
    def dob(self, profile: LearnerProfile) -> str:
        return f"{profile.dob_month}/{profile.dob_day}" if profile.dob_month or profile.dob_day else ""
