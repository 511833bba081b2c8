"""Notifications (SPEC §12): an e-mail and an optional signed webhook when a job needs confirmation, succeeds,
fails or is found lost.

lms_import.services builds them when the event happens (what the job was at that moment) and queues their sending
as Celery tasks, on commit; a mail server or a receiver that is down delays and fails nothing but that task, which
is retried with back-off (lms_import.tasks).

    notification_recipients  the uploader and IMPORT_NOTIFY_EMAILS
    notification_mail        subject and text of the e-mail: the counts, the first errors, a link
    webhook_body             the JSON document a webhook receives (the API's job, and the event)
    webhook_signature        "sha256=" + hex HMAC-SHA256 of the body, keyed with IMPORT_WEBHOOK_SECRET
    mail_send, webhook_post  the sending, done by the tasks
"""

import hashlib
import hmac
import json
import urllib.error
import urllib.request
import uuid

from django.conf import settings
from django.core.mail import send_mass_mail
from django.urls import reverse
from django.utils import timezone

from .models import ImportJob
from .selectors import (
    EVENT_FAILED,
    EVENT_LOST,
    EVENT_NEEDS_CONFIRMATION,
    EVENT_SUCCEEDED,
    job_progress,
    job_summary,
)

MAIL_ERRORS = 10  # the first errors an e-mail lists
WEBHOOK_ERRORS = 20  # and a webhook's body
SIGNATURE_HEADER = "X-Import-Signature"
EVENT_HEADER = "X-Import-Event"

SUBJECTS = {
    EVENT_NEEDS_CONFIRMATION: "checked: it waits for your confirmation",
    EVENT_SUCCEEDED: "succeeded",
    EVENT_FAILED: "failed",
    EVENT_LOST: "was lost: its worker stopped",
}
DRY_RUN_SUBJECTS = {EVENT_SUCCEEDED: "checked (dry run): no problem found", EVENT_FAILED: "checked (dry run): problems"}
WHAT_NEXT = {
    EVENT_NEEDS_CONFIRMATION: "Review the preview and press Import (or Cancel) on the job's page:",
    EVENT_SUCCEEDED: "The records are in. The job's page has the details:",
    EVENT_FAILED: "Nothing of this file was imported. Correct it and upload it again; the job's page has the details:",
    EVENT_LOST: "Nothing of it was committed. Upload the file again; the job's page has the details:",
}


def job_links(job: ImportJob) -> dict[str, str | None]:
    """Absolute links to the job (LMS_BASE_URL): its page, its API resource, its error report."""
    base = settings.LMS_BASE_URL
    report = base + reverse("lms_import:job-error-report", args=[job.pk]) if job.error_report else None
    return {
        "page": base + reverse("lms_import:job", args=[job.pk]),
        "api": base + reverse("api:import-detail", args=[job.pk]),
        "error_report": report,
    }


def notification_recipients(job: ImportJob) -> list[str]:
    """The uploader (if their account has an e-mail) and IMPORT_NOTIFY_EMAILS, each once."""
    found: dict[str, str] = {}
    uploader = job.created_by.email if job.created_by and job.created_by.is_active else ""
    for address in [uploader, *settings.IMPORT_NOTIFY_EMAILS]:
        address = address.strip()
        if address:
            found.setdefault(address.lower(), address)
    return list(found.values())


def _counted(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def notification_mail(job: ImportJob, event: str) -> dict[str, str]:
    """The e-mail of an event: {"subject", "body"} in plain text."""
    name = job.display_name
    what = DRY_RUN_SUBJECTS.get(event) if job.dry_run else None
    subject = f"Import #{job.pk} ({name}) {what or SUBJECTS[event]}"
    links = job_links(job)
    who = job.created_by.get_username() if job.created_by else "the command line"
    course = f", course {job.course.external_course_id}" if job.course else ""
    lines = [
        f"Import #{job.pk}: {name}",
        f"{job.get_importer_display()}{course}; from {job.source or 'an upload'} by {who}, "
        f"{timezone.localtime(job.created_at):%Y-%m-%d %H:%M %Z}.",
        "",
        f"Status: {job.get_status_display()}" + (" (a dry run: nothing is ever written)" if job.dry_run else ""),
    ]
    if job.failure_code:
        lines.append(f"{job.failure_code}: {job.failure_message}")
    lines += ["", WHAT_NEXT[event], links["page"], ""]
    if job.rows_total:
        lines.append(
            f"Rows: {job.rows_total:,} read, {job.rows_valid:,} valid, {job.rows_invalid:,} invalid, "
            f"{job.rows_skipped:,} skipped."
        )
        verb = "Created" if job.status == ImportJob.Status.SUCCEEDED and not job.dry_run else "Would create"
        created = [
            _counted(job.created_enrollments, "enrollment"),
            _counted(job.created_credits, "credit award"),
            _counted(job.created_pending, "held row"),
            _counted(job.created_accounts, "account"),
            _counted(job.created_shells, "course shell"),
        ]
        lines.append(f"{verb}: {', '.join(created)}; {job.auto_completed:,} completed on enrollment.")
    for warning in job.warnings:
        lines.append(f"Warning {warning.get('code')}: {warning.get('message')}")
    if job.errors:
        shown = job.errors[:MAIL_ERRORS]
        lines += ["", f"First errors ({len(shown)} of {job.error_count:,}; the error report has every one):"]
        for error in shown:
            where = f"line {error['line']}" if error.get("line") else "file"
            column = f", {error['column']}" if error.get("column") else ""
            lines.append(f"  {where}{column}: {error.get('code')}: {error.get('message')}")
    if links["error_report"]:
        lines += ["", f"Error report: {links['error_report']}"]
    return {"subject": subject, "body": "\n".join(lines) + "\n"}


def mail_send(*, subject: str, body: str, recipients: list[str]) -> int:
    """One message per recipient (nobody sees the others' addresses), over one connection; how many were sent."""
    return send_mass_mail([(subject, body, settings.DEFAULT_FROM_EMAIL, [to]) for to in recipients])


def webhook_body(job: ImportJob, event: str) -> str:
    """The JSON a webhook receives: an id (the same on every retry), the event, when, and the job as the API has it."""
    done, total = job_progress(job=job)
    document = {
        "id": uuid.uuid4().hex,
        "event": event,
        "at": timezone.now().isoformat(),
        "job": job_summary(job=job, errors=WEBHOOK_ERRORS)
        | {"source": job.source, "file": job.original_filename, "progress": {"done": done, "total": total}}
        | {"links": job_links(job)},
    }
    return json.dumps(document, separators=(",", ":"))


def webhook_signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookRefused(Exception):
    """The receiver answered with a client error (4xx but 408 and 429): sending the same body again cannot help."""


def webhook_post(*, url: str, body: str, event: str, secret: str, timeout: float) -> int:
    """POST the body; the receiver's status. Raises WebhookRefused for a client error, OSError (urllib.error.URLError,
    a time-out, a 5xx as HTTPError) for what a later try may get through."""
    data = body.encode()
    headers = {"Content-Type": "application/json", "User-Agent": "lms-import-webhook/1", EVENT_HEADER: event}
    if secret:
        headers[SIGNATURE_HEADER] = webhook_signature(data, secret)
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        if 400 <= error.code < 500 and error.code not in (408, 429):
            raise WebhookRefused(f"{url} answered {error.code} {error.reason}") from error
        raise
