"""Celery tasks: thin wrappers that load a job by id and call the service.

They are queued by name in one place, lms_import.services (_queue), which never imports this module;
LmsImportConfig.ready imports it so that every process (web, worker, command line) knows the tasks.

Tasks are acknowledged late, so a killed worker's task is delivered again; the services only
move a job forward from the state they expect (uploaded → validating, queued → importing), so a
second delivery does nothing.
"""

import logging

from celery import shared_task

from .importer.lock import LockHeld
from .models import ImportJob
from .services import APPLY_TASK, VALIDATE_TASK, ImportRefused, import_job_apply, import_job_validate

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


@shared_task(name=APPLY_TASK)
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
