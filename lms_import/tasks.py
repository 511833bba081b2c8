"""Celery tasks: thin wrappers that load a job by id and call the service.

They are queued by name in one place, lms_import.services (_queue), which never imports this module;
LmsImportConfig.ready imports it so that every process (web, worker, command line) knows the tasks.
The sweep, the purge and the inbox's scan are sent by Celery beat (settings.CELERY_BEAT_SCHEDULE).

Notifications are tasks of their own, so that a mail server or a webhook receiver that is down fails or delays
nothing but them: each is tried again with back-off, then given up (logged).

Tasks are acknowledged late, so a killed worker's task is delivered again; the services only
move a job forward from the state they expect (uploaded → validating, queued → importing), so a
second delivery does nothing — except end a job whose worker is gone (it is marked lost, never
run again).
"""

import logging

from celery import shared_task
from django.conf import settings

from .inbox import inbox_scan, inbox_settle
from .models import ImportJob
from .notifications import WebhookRefused, mail_send, webhook_post
from .services import (
    APPLY_TASK,
    INBOX_SCAN_TASK,
    INBOX_SETTLE_TASK,
    MAIL_TASK,
    PURGE_TASK,
    REVERT_TASK,
    SWEEP_TASK,
    VALIDATE_TASK,
    WEBHOOK_TASK,
    ImportRefused,
    ImportWaiting,
    LockHeld,
    import_files_purge,
    import_job_apply,
    import_job_revert_run,
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


@shared_task(name=REVERT_TASK)
def revert_import_job(job_id: int) -> str:
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        return "missing"
    run = import_job_revert_run(job=job)
    return run.status if run else "missing"


@shared_task(name=SWEEP_TASK)
def sweep_import_jobs() -> dict[str, list[int]]:
    return import_jobs_sweep()


@shared_task(name=PURGE_TASK)
def purge_import_files() -> int:
    return len(import_files_purge())


# -- notifications -----------------------------------------------------------------------------------------
MAIL_RETRIES, MAIL_RETRY_SECONDS = 5, 60


def notification_countdown(retries: int, base: int) -> int:
    """Seconds before the next try of a notification: base, doubling, at most 10 minutes (kept under the broker's
    visibility timeout, so that a waiting retry is not delivered twice)."""
    return min(base * 2 ** min(retries, 16), 600)


@shared_task(bind=True, name=MAIL_TASK, max_retries=MAIL_RETRIES)
def mail_import_notification(self, job_id: int, event: str, mail: dict, recipients: list[str]) -> int:
    try:
        return mail_send(subject=mail["subject"], body=mail["body"], recipients=recipients)
    except Exception as error:
        if self.request.retries >= MAIL_RETRIES:
            log.error("the %s e-mail of import job %s was not sent (%s); given up", event, job_id, error)
            return 0
        countdown = notification_countdown(self.request.retries, MAIL_RETRY_SECONDS)
        log.warning("the %s e-mail of import job %s was not sent (%s); again in %s s", event, job_id, error, countdown)
        raise self.retry(countdown=countdown)


@shared_task(bind=True, name=WEBHOOK_TASK, max_retries=None)
def post_import_webhook(self, job_id: int, event: str, body: str) -> int | str:
    url = settings.IMPORT_WEBHOOK_URL
    if not url:
        return "off"
    try:
        return webhook_post(
            url=url,
            body=body,
            event=event,
            secret=settings.IMPORT_WEBHOOK_SECRET,
            timeout=settings.IMPORT_WEBHOOK_TIMEOUT_SECONDS,
        )
    except WebhookRefused as refused:
        log.error("the %s webhook of import job %s was refused (%s); not sent again", event, job_id, refused)
        return "refused"
    except Exception as error:
        if self.request.retries >= settings.IMPORT_WEBHOOK_RETRIES:
            log.error("the %s webhook of import job %s failed (%s); given up", event, job_id, error)
            return "failed"
        countdown = notification_countdown(self.request.retries, settings.IMPORT_WEBHOOK_RETRY_SECONDS)
        log.warning("the %s webhook of import job %s failed (%s); again in %s s", event, job_id, error, countdown)
        raise self.retry(countdown=countdown)


# -- the inbox -----------------------------------------------------------------------------------------------
@shared_task(name=INBOX_SCAN_TASK)
def scan_import_inbox() -> dict[str, list]:
    return inbox_scan()


@shared_task(name=INBOX_SETTLE_TASK)
def settle_inbox_file(job_id: int) -> str | None:
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        return "missing"
    moved = inbox_settle(job=job)
    return str(moved) if moved else None
