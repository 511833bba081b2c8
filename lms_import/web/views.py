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

from core.findings import F_MISSING_COLUMN
from courses.models import Course
from enrollments.models import PendingRecord
from lms_import.models import ImportJob
from lms_import.selectors import (
    import_lock_state,
    job_cancellable,
    job_confirmable,
    job_findings_summary,
    job_import_label,
    job_is_lost,
    job_needs_acknowledgment,
    job_progress_data,
    job_revert_summary,
    job_rows_to_skip,
    job_status_display,
    job_typed_confirmations,
    jobs_liveness,
)
from lms_import.services import (
    ConfirmCountRefused,
    ImportRefused,
    MappingRefused,
    import_job_cancel,
    import_job_columns,
    import_job_confirm,
    import_job_create,
    import_job_remap,
    import_lock_unlock,
    job_remappable,
)

from .forms import ConfirmForm, MappingForm, UnlockForm, UploadForm, too_large_message
from .uploads import SizeLimitedUploadHandler

log = logging.getLogger(__name__)
PERMISSION = "lms_import.import_course_records"
ERRORS_PER_PAGE = 50
JOBS_PER_PAGE = 25
HOLDING_PER_PAGE = 50
ACKNOWLEDGE = (
    "Tick the acknowledgment to import: this course completes enrollments on enrollment and gives them all of its "
    "credit "
    "(W_AUTO_COMPLETE)."
)


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
        mapping=data.get("mapping"),
        queue_validation=True,
    )


@require_http_methods(["GET", "POST"])
@import_staff_required
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Progress while validating or importing; then the preview (Import / Cancel) or the result.

    A refused "Import" (the acknowledgment not ticked, a number not typed or not right) shows the page again with
    the reason at its field.
    """
    job = get_object_or_404(ImportJob.objects.select_related("course", "created_by"), pk=pk)
    form = ConfirmForm()
    if request.method == "POST":
        decided, form = _decide(request, job)
        if decided is not None:
            return decided
    lock = import_lock_state()
    errors = Paginator(job.errors, ERRORS_PER_PAGE).get_page(request.GET.get("errors_page"))
    # A header without the required columns: the file's columns as read, and the mapping step (SPEC §13).
    columns = import_job_columns(job=job) if job.failure_code == F_MISSING_COLUMN else None
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
            "columns": columns,
            "remappable": job_remappable(job),
            "status_display": job_status_display(job=job),
            "findings_summary": job_findings_summary(job=job) if job.error_count else [],
            "typed_confirmations": job_typed_confirmations(job=job),
            "import_label": job_import_label(job=job),
            "rows_to_skip": job_rows_to_skip(job=job),
            "confirm_form": form,
            "confirm_threshold": settings.IMPORT_CONFIRM_THRESHOLD,
            "revert_summary": job_revert_summary(job=job),
        },
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
@import_staff_required
def job_mapping(request: HttpRequest, pk: int) -> HttpResponse:
    """The mapping step (SPEC §13): choose the file's column for each of the importer's, and check the same upload
    again with them (optionally saving the mapping by name)."""
    job = get_object_or_404(ImportJob.objects.select_related("course", "mapping"), pk=pk)
    columns = import_job_columns(job=job) if job_remappable(job) else None
    form = None
    if columns is not None:
        form = MappingForm(request.POST or None, columns=columns)
        if request.method == "POST" and form.is_valid():
            try:
                import_job_remap(
                    job=job, user=request.user, columns=form.columns(), save_as=form.cleaned_data["save_as"]
                )
            except (MappingRefused, ImportRefused) as refused:
                form.add_error(None, str(refused))
            else:
                messages.success(request, f"Import #{job.pk} is being checked again with the mapped columns.")
                return redirect("lms_import:job", pk=job.pk)
    return render(request, "lms_import/mapping.html", {"job": job, "form": form, "columns": columns})


def _decide(request: HttpRequest, job: ImportJob) -> tuple[HttpResponse | None, ConfirmForm]:
    """Import or Cancel: a redirect to the job page, or (None, the form with the reason at its field)."""
    action = request.POST.get("action")
    form = ConfirmForm(request.POST if action == "import" else None)
    try:
        if action == "import":
            if not form.is_valid():
                return None, form
            acknowledged = form.cleaned_data.get("acknowledge", False)
            if job_needs_acknowledgment(job=job) and not acknowledged:
                form.add_error("acknowledge", ACKNOWLEDGE)
                return None, form
            import_job_confirm(job=job, user=request.user, acknowledge_auto_complete=acknowledged, typed=form.typed())
            messages.success(request, f"Import #{job.pk} is queued; this page shows its progress.")
        elif action == "cancel":
            import_job_cancel(job=job, user=request.user)
            messages.info(request, f"Import #{job.pk} is cancelled; nothing was imported.")
        else:
            messages.error(request, "Choose Import or Cancel.")
    except ConfirmCountRefused as refused:
        form.add_error(refused.field, f"{refused.code}: {refused}")
        return None, form
    except ImportRefused as refused:
        messages.error(request, str(refused))
    except Exception:
        log.exception("%s of import job %s failed", action, job.pk)
        messages.error(
            request,
            f"Import #{job.pk} could not be changed because of an unexpected error; the server log has the details.",
        )
    return redirect("lms_import:job", pk=job.pk), form


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
