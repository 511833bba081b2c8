from django.apps import AppConfig


class LmsImportConfig(AppConfig):
    name = "lms_import"
    verbose_name = "Course record import"

    def ready(self) -> None:
        # The Celery tasks, registered in every process so that lms_import.services can queue them by name; the
        # receiver that audits django-axes' login lockouts.
        from . import signals, tasks  # noqa: F401
