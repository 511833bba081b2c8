"""The browser workflow (SPEC §6–§8): thin views over lms_import.services.

A view never imports anything itself, sets a status or queues a task: the upload view asks the
services for a job whose validation is queued, the job page asks them to confirm or cancel, and a
Celery worker does the work. Pages read the job's progress and the lock's state from the database.
"""

import logging
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from core.findings import W_AUTO_COMPLETE
from courses.models import Course
from enrollments.models import PendingRecord
from lms_import.importer.lock import LockState, lock_state, lock_unlock
from lms_import.models import ImportJob
from lms_import.services import ImportRefused, import_job_cancel, import_job_confirm, import_job_create

from .forms import ConfirmForm, UnlockForm, UploadForm, too_large_message
from .uploads import SizeLimitedUploadHandler

log = logging.getLogger(__name__)
Status = ImportJob.Status
PERMISSION = "lms_import.import_course_records"
ERRORS_PER_PAGE = 50
JOBS_PER_PAGE = 25
HOLDING_PER_PAGE = 50


def import_staff_required(view):
    """Anonymous users go to the login page; logged-in users without the permission get 403."""
    return login_required(permission_required(PERMISSION, raise_exception=True)(view))


def site_admin_required(view):
    @wraps(view)
    def checked(request: HttpRequest, *args, **kwargs):
        if not request.user.is_superuser:
            raise PermissionDenied("Only site admins can unlock imports.")
        return view(request, *args, **kwargs)

    return login_required(checked)


# -- job state as the pages show it ------------------------------------------------------------------
def _holds(lock: LockState, job: ImportJob) -> bool:
    return lock.held and lock.job is not None and lock.job.pk == job.pk


def job_is_lost(job: ImportJob, lock: LockState) -> bool:
    """An importing job whose worker is gone: its lock went stale, or it no longer holds the lock and is silent."""
    if job.status != Status.IMPORTING:
        return False
    if _holds(lock, job):
        return lock.stale
    # Not holding the lock (released by an unlock, or not taken yet): lost once its own pulse is older than the lease.
    silent = job.heartbeat_at is None or (lock.db_now - job.heartbeat_at).total_seconds() > lock.lease_seconds
    return silent


def job_progress_data(job: ImportJob, lock: LockState) -> dict:
    done, total = job.progress  # while importing, the live figures are on the lock row
    if job.status in (Status.QUEUED, Status.IMPORTING) and not _holds(lock, job):
        done = 0  # the apply has not started; the job's own figures are the validation's
    total = max(total, done)
    percent = round(100 * done / total) if total else 0
    if job.status == Status.IMPORTING and _holds(lock, job):
        heartbeat_age = lock.heartbeat_age_seconds  # an apply's heartbeat goes to the lock row
    else:
        heartbeat_age = (lock.db_now - job.heartbeat_at).total_seconds() if job.heartbeat_at else None
    stalled = job.status == Status.VALIDATING and (heartbeat_age is None or heartbeat_age > lock.lease_seconds)
    return {
        "job": job.pk,
        "status": job.status,
        "status_label": job.get_status_display(),
        "active": job.status in ImportJob.ACTIVE_STATUSES,
        "lost": job_is_lost(job, lock),
        "stalled": stalled,  # a validation whose worker went silent; its redelivered task runs it again
        "done": done,
        "total": total,
        "percent": percent,
        "heartbeat_age": round(heartbeat_age, 1) if heartbeat_age is not None else None,
    }


def _confirmable(job: ImportJob) -> bool:
    """Can_apply, or validated again after the apply found the auto-complete warning unacknowledged."""
    if job.can_apply:
        return True
    retry_with_ack = job.failure_code == W_AUTO_COMPLETE and job.rows_valid > 0
    return job.status == Status.VALIDATED and retry_with_ack and (job.rows_invalid == 0 or job.skip_invalid)


# -- pages ----------------------------------------------------------------------------------------------
@require_GET
@import_staff_required
def import_home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "lms_import/home.html",
        {"lock": lock_state(), "jobs": ImportJob.objects.select_related("course", "created_by")[:5]},
    )


@csrf_exempt  # checked by csrf_protect below, once the size limit is in place (see uploads.py)
@import_staff_required
def course_records(request: HttpRequest, external_course_id: str | None = None) -> HttpResponse:
    """The upload form ("Import" tab); on a course's page, with that course chosen."""
    limiter = None
    if request.method == "POST":
        limiter = SizeLimitedUploadHandler(request, limit=_max_upload_bytes())
        request.upload_handlers.insert(0, limiter)
    return _upload(request, external_course_id, limiter)


@csrf_protect
@require_http_methods(["GET", "POST"])
def _upload(request: HttpRequest, external_course_id: str | None, limiter) -> HttpResponse:
    course = None
    if external_course_id is not None:
        course = get_object_or_404(Course, external_course_id=external_course_id, kind=Course.KIND_COURSE)
    initial = {"course": course, "importer": ImportJob.Importer.COURSE} if course else {}
    if request.method != "POST":
        form = UploadForm(initial=initial)
    else:
        form = UploadForm(request.POST, request.FILES, initial=initial)
        if limiter is not None and limiter.too_large:
            form.is_valid()
            form.errors.clear()  # only the size matters: the rest of the form was never read
            form.add_error("csv_file", too_large_message(limiter.refused_size, limiter.limit))
        elif form.is_valid():
            try:
                job = _create(request, form)
            except Exception:
                log.exception("storing an upload failed")
                form.add_error(
                    None,
                    "The file could not be stored because of an unexpected error; nothing was "
                    "imported. Try again, and tell the site's operators if it happens again.",
                )
            else:
                return redirect("lms_import:job", pk=job.pk)
    return render(
        request,
        "lms_import/upload.html",
        {"form": form, "course": course, "tab": "import", "max_bytes": _max_upload_bytes()},
    )


def _max_upload_bytes() -> int:
    return settings.IMPORT_MAX_UPLOAD_BYTES


def _create(request: HttpRequest, form: UploadForm) -> ImportJob:
    data = form.cleaned_data
    upload = data["csv_file"]
    return import_job_create(
        user=request.user,
        importer=data["importer"],
        course=data["course"],
        upload=upload,
        filename=upload.name,
        skip_invalid=data["skip_invalid"],
        create_accounts=data["create_accounts"],
        queue_validation=True,
    )


@require_http_methods(["GET", "POST"])
@import_staff_required
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Progress while validating or importing; then the preview (Import / Cancel) or the result."""
    job = get_object_or_404(ImportJob.objects.select_related("course", "created_by"), pk=pk)
    if request.method == "POST":
        return _decide(request, job)
    lock = lock_state()
    errors = Paginator(job.errors, ERRORS_PER_PAGE).get_page(request.GET.get("errors_page"))
    return render(
        request,
        "lms_import/job.html",
        {
            "job": job,
            "lock": lock,
            "progress": job_progress_data(job, lock),
            "active": job.status in ImportJob.ACTIVE_STATUSES,
            "errors_page": errors,
            "errors_beyond_stored": max(job.error_count - len(job.errors), 0),
            "confirmable": _confirmable(job),
            "needs_ack": job.status == Status.VALIDATED and job.blocking_auto_complete,
            "can_cancel": job.status in (Status.UPLOADED, Status.VALIDATED),
        },
    )


def _decide(request: HttpRequest, job: ImportJob) -> HttpResponse:
    action = request.POST.get("action")
    try:
        if action == "import":
            form = ConfirmForm(request.POST)
            form.is_valid()
            acknowledged = form.cleaned_data.get("acknowledge", False)
            import_job_confirm(job=job, user=request.user, acknowledge_auto_complete=acknowledged)
            messages.success(request, f"Import #{job.pk} is queued; this page shows its progress.")
        elif action == "cancel":
            import_job_cancel(job=job, user=request.user)
            messages.info(request, f"Import #{job.pk} is cancelled; nothing was imported.")
        else:
            messages.error(request, "Choose Import or Cancel.")
    except ImportRefused as refused:
        messages.error(request, str(refused))
    except Exception:
        log.exception("%s of import job %s failed", action, job.pk)
        messages.error(
            request,
            f"Import #{job.pk} could not be changed because of an unexpected error; the server log has the details.",
        )
    return redirect("lms_import:job", pk=job.pk)


@require_GET
@import_staff_required
def job_progress(request: HttpRequest, pk: int) -> JsonResponse:
    """What the progress bar polls (the page reloads itself when the job moves on)."""
    job = get_object_or_404(ImportJob, pk=pk)
    return JsonResponse(job_progress_data(job, lock_state()))


@require_GET
@import_staff_required
def job_error_report(request: HttpRequest, pk: int) -> FileResponse:
    """The error report CSV as a download; never through MEDIA_URL."""
    job = get_object_or_404(ImportJob, pk=pk)
    if not job.error_report:
        raise Http404("This job has no error report.")
    try:
        report = job.error_report.open("rb")
    except FileNotFoundError:
        raise Http404("The error report file is missing.")
    response = FileResponse(report, as_attachment=True, filename=f"import-{job.pk}-errors.csv")
    response["Content-Type"] = "text/csv; charset=utf-8"
    return response


@require_GET
@import_staff_required
def job_history(request: HttpRequest) -> HttpResponse:
    jobs = Paginator(ImportJob.objects.select_related("course", "created_by"), JOBS_PER_PAGE)
    return render(
        request, "lms_import/history.html", {"jobs_page": jobs.get_page(request.GET.get("page")), "tab": "history"}
    )


@require_GET
@import_staff_required
def holding(request: HttpRequest) -> HttpResponse:
    """The holding table: rows waiting for their learner's account."""
    applied = request.GET.get("show") == "applied"
    status = PendingRecord.STATUS_APPLIED if applied else PendingRecord.STATUS_PENDING
    records = (
        PendingRecord.objects.filter(status=status)
        .select_related("course", "credit_type", "import_job")
        .order_by("-created_at", "-id")
    )
    return render(
        request,
        "lms_import/holding.html",
        {
            "records_page": Paginator(records, HOLDING_PER_PAGE).get_page(request.GET.get("page")),
            "applied": applied,
            "waiting_count": PendingRecord.objects.filter(status=PendingRecord.STATUS_PENDING).count(),
            "tab": "holding",
        },
    )


@require_http_methods(["GET", "POST"])
@site_admin_required
def unlock(request: HttpRequest) -> HttpResponse:
    """The reference note's Unlock: who holds the lock, since when, last heartbeat, stale or live; "Unlock"."""
    form = UnlockForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        job = lock_unlock(user=request.user, reason=form.cleaned_data["reason"])
        if job is not None:
            messages.success(
                request,
                f"Unlocked. Import #{job.pk} is marked failed; nothing of it was committed. "
                "Upload the file again to import it.",
            )
        else:
            messages.success(request, "Unlocked. The importer is free.")
        return redirect(reverse("lms_import:unlock"))
    lock = lock_state()
    lost = lock.job is not None and job_is_lost(lock.job, lock)
    return render(request, "lms_import/unlock.html", {"lock": lock, "form": form, "lost": lost, "tab": "unlock"})
