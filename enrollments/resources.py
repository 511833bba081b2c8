"""django-import-export resources: enrollments out only (the course record importer is the only way in)."""

from import_export import fields, resources

from .models import Enrollment


class EnrollmentResource(resources.ModelResource):
    username = fields.Field(attribute="user__username", column_name="username")
    external_user_id = fields.Field(attribute="user__learner_profile__external_user_id", column_name="external_user_id")
    email = fields.Field(attribute="user__email", column_name="external_email")
    first_name = fields.Field(attribute="user__first_name", column_name="first_name")
    last_name = fields.Field(attribute="user__last_name", column_name="last_name")
    course = fields.Field(attribute="course__external_course_id", column_name="external_course_id")
    title = fields.Field(attribute="course__title", column_name="title")
    import_job = fields.Field(attribute="import_job_id", column_name="import_job")

    class Meta:
        model = Enrollment
        fields = (
            "id",
            "username",
            "external_user_id",
            "email",
            "first_name",
            "last_name",
            "course",
            "title",
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
        )
        export_order = fields
