"""The catalog in the admin: courses with their steps and credit, importable and exportable as spreadsheets."""

from django import forms
from django.contrib import admin
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils.html import format_html
from import_export.admin import ImportExportModelAdmin

from enrollments.models import Enrollment
from lms_import.admin_support import SpreadsheetAdmin

from .models import Course, CourseCredit, CourseObject
from .resources import SHELL_OFFERS_NOTHING, CourseCreditResource, CourseObjectResource, CourseResource

SHELL_HAS_NO_OBJECTS = "Course shells cannot have course objects: change the kind to 'course' first."


def _count(model, **filters) -> Coalesce:
    """The number of model rows of each course, as a correlated subquery."""
    rows = model.objects.filter(course=OuterRef("pk"), **filters).order_by().values("course")
    return Coalesce(Subquery(rows.annotate(n=Count("pk")).values("n")), 0)


class ShellGuardFormSet(forms.BaseInlineFormSet):
    """The course's kind as posted, not as stored, decides: a shell takes no steps and offers no credit."""

    message = ""

    def clean(self):
        super().clean()
        if not self.instance.is_shell:
            return
        kept = [f for f in self.forms if f.has_changed() or f.instance.pk]
        if any(not self._should_delete_form(f) for f in kept):
            raise forms.ValidationError(self.message)


class ObjectsFormSet(ShellGuardFormSet):
    message = SHELL_HAS_NO_OBJECTS


class CreditsFormSet(ShellGuardFormSet):
    message = SHELL_OFFERS_NOTHING


class CourseObjectInline(admin.TabularInline):
    model = CourseObject
    formset = ObjectsFormSet
    extra = 0
    fields = ("position", "title", "kind", "required")


class CourseCreditInline(admin.TabularInline):
    model = CourseCredit
    formset = CreditsFormSet
    extra = 0
    fields = ("credit_type", "max_credits", "variable", "increment")


@admin.register(Course)
class CourseAdmin(SpreadsheetAdmin, ImportExportModelAdmin):
    resource_classes = [CourseResource]
    list_display = (
        "external_course_id",
        "title",
        "kind",
        "pars_activity_id",
        "certificate_enabled",
        "required_objects",
        "enrollment_count",
    )
    list_filter = ("kind", "certificate_enabled")
    search_fields = ("external_course_id", "title", "pars_activity_id")
    readonly_fields = ("created_at", "created_by_job", "import_link")
    fields = (
        "external_course_id",
        "title",
        "kind",
        "pars_activity_id",
        "certificate_enabled",
        "import_link",
        "created_at",
        "created_by_job",
    )
    inlines = [CourseObjectInline, CourseCreditInline]

    def get_queryset(self, request):
        # Subqueries, not joins: two joined counts multiply each other, and a join would aggregate every
        # enrollment of the site for one page of courses.
        return (
            super()
            .get_queryset(request)
            .annotate(
                required_total=_count(CourseObject, required=True),
                enrollment_total=_count(Enrollment),
            )
        )

    @admin.display(description="Required steps", ordering="required_total")
    def required_objects(self, course: Course) -> int:
        # None means every new enrollment completes at once with all credit (W_AUTO_COMPLETE).
        return course.required_total

    @admin.display(description="Enrollments", ordering="enrollment_total")
    def enrollment_count(self, course: Course) -> int:
        return course.enrollment_total

    @admin.display(description="Import records")
    def import_link(self, course: Course) -> str:
        if not course.pk or course.is_shell:
            return "—"
        return format_html(
            '<a href="/courses/{}/import/">Import course records into this course</a>', course.external_course_id
        )


@admin.register(CourseObject)
class CourseObjectAdmin(SpreadsheetAdmin, ImportExportModelAdmin):
    resource_classes = [CourseObjectResource]
    list_display = ("title", "course", "kind", "required", "position")
    list_filter = ("kind", "required")
    search_fields = ("title", "course__external_course_id", "course__title")
    list_select_related = ("course",)
    raw_id_fields = ("course",)


@admin.register(CourseCredit)
class CourseCreditAdmin(SpreadsheetAdmin, ImportExportModelAdmin):
    resource_classes = [CourseCreditResource]
    list_display = ("course", "credit_type", "max_credits", "variable", "increment")
    list_filter = ("credit_type", "variable")
    search_fields = ("course__external_course_id", "course__title", "credit_type__machine_name")
    list_select_related = ("course", "credit_type")
    raw_id_fields = ("course",)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)

        class ShellGuardForm(form):
            def clean(self):
                data = super().clean()
                course = data.get("course")
                if course is not None and course.is_shell:
                    raise forms.ValidationError(SHELL_OFFERS_NOTHING)
                return data

        return ShellGuardForm
