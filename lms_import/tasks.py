"""Celery tasks: thin wrappers that load a job by id and call the service.

Tasks are acknowledged late, so a killed worker's task is delivered again; the services only
move a job forward from the state they expect (uploaded → validating, queued → importing), so a
second delivery does nothing.
"""

import logging

from celery import shared_task

from .importer.lock import LockHeld
from .models import ImportJob
from .services import ImportRefused, import_job_apply, import_job_validate

log = logging.getLogger(__name__)


@shared_task(name="lms_import.validate_import_job")
def validate_import_job(job_id: int) -> str:
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        return "missing"
    try:
        return import_job_validate(job=job).status
    except ImportRefused as refused:
        log.info("validate_import_job(%s) skipped: %s", job_id, refused)
        return "skipped"


@shared_task(name="lms_import.apply_import_job")
def apply_import_job(job_id: int) -> str:
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        return "missing"
    try:
        return import_job_apply(job=job).status
    except ImportRefused as refused:
        log.info("apply_import_job(%s) skipped: %s", job_id, refused)
        return "skipped"
    except LockHeld:
        return "locked"
