"""The browser workflow (SPEC §6–§8): thin views over lms_import.services and lms_import.selectors.

A view never imports anything itself, sets a status or queues a task: the upload view asks the
services for a job whose validation is queued, the job page asks them to confirm or cancel, and a
Celery worker does the work. What a page shows of a job (progress, lost, confirmable) and of the
lock comes from the selectors.
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
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from courses.models import Course
from enrollments.models import PendingRecord
from lms_import.models import ImportJob
from lms_import.selectors import (
    import_lock_state,
    job_cancellable,
    job_confirmable,
    job_is_lost,
    job_needs_acknowledgment,
    job_progress_data,
    jobs_liveness,
)
from lms_import.services import (
    ImportRefused,
    import_job_cancel,
    import_job_confirm,
    import_job_create,
    import_lock_unlock,
)

from .forms import ConfirmForm, UnlockForm, UploadForm, too_large_message
from .uploads import SizeLimitedUploadHandler

log = logging.getLogger(__name__)
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


# -- pages ----------------------------------------------------------------------------------------------
@require_GET
@import_staff_required
def import_home(request: HttpRequest) -> HttpResponse:
    lock = import_lock_state()
    jobs = jobs_liveness(jobs=ImportJob.objects.select_related("course", "created_by")[:5], lock=lock)
    return render(request, "lms_import/home.html", {"lock": lock, "jobs": jobs})


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
    lock = import_lock_state()
    errors = Paginator(job.errors, ERRORS_PER_PAGE).get_page(request.GET.get("errors_page"))
    return render(
        request,
        "lms_import/job.html",
        {
            "job": job,
            "lock": lock,
            "progress": job_progress_data(job=job, lock=lock),
            "active": job.status in ImportJob.ACTIVE_STATUSES,
            "errors_page": errors,
            "errors_beyond_stored": max(job.error_count - len(job.errors), 0),
            "confirmable": job_confirmable(job=job),
            "needs_ack": job_needs_acknowledgment(job=job),
            "can_cancel": job_cancellable(job=job),
            "sweep_seconds": settings.IMPORT_SWEEP_SECONDS,
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
    return JsonResponse(job_progress_data(job=job, lock=import_lock_state()))


@require_GET
@import_staff_required
@never_cache  # the rows as sent: learners' names, e-mails, license numbers
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
    page = jobs.get_page(request.GET.get("page"))
    page.object_list = jobs_liveness(jobs=page.object_list, lock=import_lock_state())
    return render(request, "lms_import/history.html", {"jobs_page": page, "tab": "history"})


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
    lock = import_lock_state()
    form = UnlockForm(request.POST if request.method == "POST" else None, live=lock.held and not lock.stale)
    if request.method == "POST" and form.is_valid():
        job = import_lock_unlock(user=request.user, reason=form.cleaned_data["reason"])
        if job is not None:
            messages.success(
                request,
                f"Unlocked. Import #{job.pk} is marked failed; nothing of it was committed. "
                "Upload the file again to import it.",
            )
        else:
            messages.success(request, "Unlocked. The importer is free.")
        return redirect(reverse("lms_import:unlock"))
    lost = lock.job is not None and job_is_lost(job=lock.job)
    return render(request, "lms_import/unlock.html", {"lock": lock, "form": form, "lost": lost, "tab": "unlock"})
