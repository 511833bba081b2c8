"""Credit types (importable and exportable) and credit awards (exportable: the course record importer is the only way
to import course records)."""

from django.contrib import admin
from import_export.admin import ExportActionModelAdmin, ImportExportModelAdmin

from lms_import.admin_support import SpreadsheetAdmin

from .models import CreditAward, CreditType
from .resources import CreditAwardResource, CreditTypeResource


@admin.register(CreditType)
class CreditTypeAdmin(SpreadsheetAdmin, ImportExportModelAdmin):
    resource_classes = [CreditTypeResource]
    list_display = ("machine_name", "name", "unit")
    search_fields = ("machine_name", "name")


@admin.register(CreditAward)
class CreditAwardAdmin(SpreadsheetAdmin, ExportActionModelAdmin):
    resource_classes = [CreditAwardResource]
    list_display = ("enrollment", "credit_type", "credits", "credit_expiration", "source", "import_job", "updated_at")
    list_filter = ("source", "credit_type")
    search_fields = (
        "enrollment__user__username",
        "enrollment__user__email",
        "enrollment__user__learner_profile__external_user_id",
        "enrollment__course__external_course_id",
    )
    list_select_related = ("enrollment__user", "enrollment__course", "credit_type", "import_job")
    raw_id_fields = ("enrollment",)
    readonly_fields = ("source", "import_job", "created_at", "updated_at")
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        # The export reads the learner's external id through the profile: fetch it with the row.
        return super().get_queryset(request).select_related("enrollment__user__learner_profile")
