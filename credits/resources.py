"""django-import-export resources: credit types in and out; credit awards out only.

Credit awards are course records: the course record importer is the only way to import them.
"""

from import_export import fields, resources

from .models import CreditAward, CreditType


class CreditTypeResource(resources.ModelResource):
    class Meta:
        model = CreditType
        fields = ("machine_name", "name", "unit")
        import_id_fields = ("machine_name",)
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True


class CreditAwardResource(resources.ModelResource):
    enrollment = fields.Field(attribute="enrollment_id", column_name="enrollment_id")
    external_user_id = fields.Field(
        attribute="enrollment__user__learner_profile__external_user_id", column_name="external_user_id"
    )
    email = fields.Field(attribute="enrollment__user__email", column_name="external_email")
    course = fields.Field(attribute="enrollment__course__external_course_id", column_name="external_course_id")
    credit_type = fields.Field(attribute="credit_type__machine_name", column_name="credit_type")
    import_job = fields.Field(attribute="import_job_id", column_name="import_job")

    class Meta:
        model = CreditAward
        fields = (
            "id",
            "enrollment",
            "external_user_id",
            "email",
            "course",
            "credit_type",
            "credits",
            "credit_expiration",
            "source",
            "import_job",
            "created_at",
            "updated_at",
        )
        export_order = fields
