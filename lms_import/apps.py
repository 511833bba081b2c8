from django.apps import AppConfig


class LmsImportConfig(AppConfig):
    name = "lms_import"
    verbose_name = "Course record import"
