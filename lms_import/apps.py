from django.apps import AppConfig


class LmsImportConfig(AppConfig):
    name = "lms_import"
    verbose_name = "Course record import"

    def ready(self) -> None:
        # Registers the Celery tasks in every process, so that lms_import.services can queue them by name.
        from . import tasks  # noqa: F401
