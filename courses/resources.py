"""django-import-export resources of the catalog: a site's courses, their steps and credit set up from a spreadsheet.

Rows are matched on natural keys (external_course_id; course + title; course + credit type) so the
same spreadsheet can be imported again to update. Every instance is validated with full_clean, so
the models' rules (shells never have certificates or course objects, credit constraints) hold.
"""

from django.core.exceptions import ValidationError
from import_export import fields, resources
from import_export.widgets import ForeignKeyWidget

from credits.models import CreditType
from lms_import.admin_support import StrictBooleanWidget

from .models import Course, CourseCredit, CourseObject

SHELL_OFFERS_NOTHING = "Course shells offer no credit: create the course (kind 'course') first."


def course_field() -> fields.Field:
    return fields.Field(
        attribute="course", column_name="external_course_id", widget=ForeignKeyWidget(Course, "external_course_id")
    )


class CourseResource(resources.ModelResource):
    certificate_enabled = fields.Field(
        attribute="certificate_enabled", column_name="certificate_enabled", widget=StrictBooleanWidget()
    )

    class Meta:
        model = Course
        fields = ("external_course_id", "title", "kind", "pars_activity_id", "certificate_enabled")
        import_id_fields = ("external_course_id",)
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True


class CourseObjectResource(resources.ModelResource):
    course = course_field()
    required = fields.Field(attribute="required", column_name="required", widget=StrictBooleanWidget())

    class Meta:
        model = CourseObject
        fields = ("course", "title", "kind", "required", "position")
        import_id_fields = ("course", "title")
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True


class CourseCreditResource(resources.ModelResource):
    course = course_field()
    credit_type = fields.Field(
        attribute="credit_type", column_name="credit_type", widget=ForeignKeyWidget(CreditType, "machine_name")
    )
    variable = fields.Field(attribute="variable", column_name="variable", widget=StrictBooleanWidget())

    class Meta:
        model = CourseCredit
        fields = ("course", "credit_type", "max_credits", "variable", "increment")
        import_id_fields = ("course", "credit_type")
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True

    def validate_instance(self, instance, import_validation_errors=None, validate_unique=True):
        errors = dict(import_validation_errors or {})
        if instance.course_id and instance.course.is_shell:
            errors["course"] = ValidationError(SHELL_OFFERS_NOTHING)
        super().validate_instance(instance, errors, validate_unique)
