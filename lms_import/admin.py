"""Import jobs, the lock and the audit log in the admin: read-only records of what happened.

Jobs are changed only through their own pages (/import/jobs/<id>/: confirm, cancel, revert) and the
lock through Unlock, so that every change goes through the services and is audited there.
"""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from .admin_support import AuditedAdmin
from .models import AuditEvent, ColumnMapping, ImportJob, ImportLock


class ReadOnlyAdmin(admin.ModelAdmin):
    actions = None  # no bulk action either: a job changes only through lms_import.services (its page, the CLI)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class AuditEventInline(admin.TabularInline):
    model = AuditEvent
    extra = 0
    fields = ("at", "actor", "action", "details")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "display_name",
        "importer",
        "course",
        "status",
        "dry_run",
        "created_by",
        "created_at",
        "rows_total",
        "rows_invalid",
        "created_enrollments",
        "created_credits",
        "created_pending",
    )
    list_filter = ("status", "importer", "dry_run")
    search_fields = ("original_filename", "sha256", "course__external_course_id", "created_by__username")
    list_select_related = ("course", "created_by")
    date_hierarchy = "created_at"
    inlines = [AuditEventInline]
    readonly_fields = ("links",)
    fieldsets = [
        (None, {"fields": ("links", "status", "importer", "course", "created_by", "created_at", "dry_run")}),
        ("File", {"fields": ("original_filename", "file_size", "sha256", "encoding", "delimiter")}),
        ("Options", {"fields": ("skip_invalid", "create_accounts", "allow_auto_complete")}),
        ("Column mapping", {"fields": ("mapping", "mapping_applied")}),
        (
            "Counts",
            {
                "fields": (
                    ("rows_total", "rows_valid", "rows_invalid", "rows_skipped"),
                    ("created_enrollments", "created_credits", "created_pending"),
                    ("created_accounts", "created_shells", "auto_completed"),
                )
            },
        ),
        ("Findings", {"fields": ("warnings", "error_count", "errors", "failure_code", "failure_message")}),
        (
            "Timing",
            {
                "fields": (
                    ("validate_started_at", "validate_finished_at", "validate_attempts"),
                    ("apply_started_at", "apply_finished_at", "waiting_for"),
                )
            },
        ),
        ("Revert", {"fields": ("reverted_at", "reverted_by")}),
    ]

    @admin.display(description="Pages")
    def links(self, job: ImportJob) -> str:
        links = [(f"/import/jobs/{job.pk}/", "Job page")]
        if job.status == ImportJob.Status.SUCCEEDED and not job.dry_run:
            links.append((reverse("lms_import:job-revert", args=[job.pk]), "Revert import"))
        return format_html_join(" · ", '<a href="{}">{}</a>', links)


@admin.register(ImportLock)
class ImportLockAdmin(ReadOnlyAdmin):
    list_display = ("scope", "held", "job", "holder", "acquired_at", "heartbeat_at")
    fields = ("scope", "held", "job", "holder", "acquired_at", "heartbeat_at", "unlock")
    readonly_fields = fields

    @admin.display(boolean=True, description="Held")
    def held(self, lock: ImportLock) -> bool:
        return lock.is_held

    @admin.display(description="Unlock")
    def unlock(self, lock: ImportLock) -> str:
        return format_html('<a href="{}">Unlock page</a>', "/import/course-records/unlock/")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor", "action", "job", "summary")
    list_filter = ("action",)
    search_fields = ("actor__username", "job__id", "details")
    list_select_related = ("actor", "job")
    date_hierarchy = "at"
    fields = ("at", "actor", "action", "job", "details")

    @admin.display(description="Details")
    def summary(self, event: AuditEvent) -> str:
        text = ", ".join(f"{key}: {value}" for key, value in (event.details or {}).items())
        return text[:200] + ("…" if len(text) > 200 else "")


@admin.register(ColumnMapping)
class ColumnMappingAdmin(AuditedAdmin):
    """Saved column mappings (SPEC §13), made on an import's page (Map the columns) or here; every change audited.
    A job keeps a copy of the mapping it was read with, so editing one changes no past job."""

    list_display = ("name", "columns_shown", "created_by", "updated_at")
    search_fields = ("name",)
    list_select_related = ("created_by",)
    fields = ("name", "columns", "created_by", "created_at", "updated_at")
    readonly_fields = ("created_by", "created_at", "updated_at")

    @admin.display(description="Columns")
    def columns_shown(self, mapping: ColumnMapping) -> str:
        text = "; ".join(f"{cell or '(not in the file)'} → {name}" for name, cell in (mapping.columns or {}).items())
        return text[:200] + ("…" if len(text) > 200 else "")

    def save_model(self, request, obj: ColumnMapping, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
