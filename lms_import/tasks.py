"""Celery tasks: thin wrappers that load a job by id and call the service.

They are queued by name in one place, lms_import.services (_queue), which never imports this module;
LmsImportConfig.ready imports it so that every process (web, worker, command line) knows the tasks.
The sweep is sent by Celery beat (settings.CELERY_BEAT_SCHEDULE).

Tasks are acknowledged late, so a killed worker's task is delivered again; the services only
move a job forward from the state they expect (uploaded → validating, queued → importing), so a
second delivery does nothing — except end a job whose worker is gone (it is marked lost, never
run again).
"""

import logging

from celery import shared_task
from django.conf import settings

from .models import ImportJob
from .services import (
    APPLY_TASK,
    PURGE_TASK,
    SWEEP_TASK,
    VALIDATE_TASK,
    ImportRefused,
    ImportWaiting,
    LockHeld,
    import_files_purge,
    import_job_apply,
    import_job_validate,
    import_jobs_sweep,
)

log = logging.getLogger(__name__)


@shared_task(name=VALIDATE_TASK)
def validate_import_job(job_id: int) -> str:
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        return "missing"
    try:
        return import_job_validate(job=job).status
    except ImportRefused as refused:
        log.info("validate_import_job(%s) skipped: %s", job_id, refused)
        return "skipped"


def lock_retry_countdown(retries: int) -> int:
    """Seconds before a job waiting for the lock tries again: a heartbeat, doubling, up to IMPORT_LOCK_RETRY_SECONDS."""
    return min(settings.IMPORT_HEARTBEAT_SECONDS * 2 ** min(retries, 16), settings.IMPORT_LOCK_RETRY_SECONDS)


@shared_task(bind=True, name=APPLY_TASK, max_retries=None)
def apply_import_job(self, job_id: int) -> str:
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        return "missing"
    try:
        return import_job_apply(job=job).status
    except ImportWaiting as waiting:
        # The holder ends (succeeds, fails, or is found lost and its lock taken over): wait for it, however long.
        countdown = lock_retry_countdown(self.request.retries)
        log.info("apply_import_job(%s) waits %s s: %s", job_id, countdown, waiting)
        raise self.retry(countdown=countdown, max_retries=None)
    except ImportRefused as refused:
        log.info("apply_import_job(%s) skipped: %s", job_id, refused)
        return "skipped"
    except LockHeld:  # only for a job applied straight from uploaded, which no task does
        return "locked"


@shared_task(name=SWEEP_TASK)
def sweep_import_jobs() -> dict[str, list[int]]:
    return import_jobs_sweep()


@shared_task(name=PURGE_TASK)
def purge_import_files() -> int:
    return len(import_files_purge())
