"""Revert of a succeeded import job (SPEC §6): the superuser's confirmation page, its progress, and the kept records.

GET shows what a revert would remove and keep (every kept record, paged, and as a CSV download), the progress of a
revert a worker is running, or what a finished revert did. POST asks for the revert (services.import_job_revert_later:
a typed number above IMPORT_CONFIRM_THRESHOLD records) and comes back here, where the progress shows.
"""

import csv

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from core.csv_safety import csv_safe

from .models import AuditEvent, ImportJob, RevertKept, RevertRun
from .revert import RevertRefused, RevertResult, import_job_revert_plan, revert_refusal
from .selectors import import_lock_state, revert_confirm_count, revert_run_progress
from .services import import_job_revert_later

KEPT_PER_PAGE = 50
QUEUED = "The revert of import #{job} is queued; this page shows its progress."


def _site_admin(request: HttpRequest) -> None:
    if not request.user.is_superuser:
        raise PermissionDenied("Only site admins can revert imports.")


def _typed_count(value: str) -> int | None:
    digits = (value or "").replace(",", "").replace(" ", "").strip()
    return int(digits) if digits.isdigit() else None


def _kept(job: ImportJob, run: RevertRun | None) -> tuple[list[dict] | None, RevertResult | None]:
    """Every kept record ({kind, record, reason}; None while a revert runs) and the plan it comes from, if one."""
    if job.status == ImportJob.Status.REVERTED:
        stored = list(RevertKept.objects.filter(job=job).values("kind", "record", "reason"))
        if stored:
            return stored, None
        event = job.audit_events.filter(action=AuditEvent.Action.REVERT).first()  # a revert from before RevertKept
        return (event.details.get("kept_records", []) if event else []), None
    if run is not None and run.status in (RevertRun.Status.QUEUED, RevertRun.Status.RUNNING):
        return None, None
    if revert_refusal(job_id=job.pk, status=job.status, dry_run=job.dry_run, reverted_at=job.reverted_at):
        return [], None
    plan = import_job_revert_plan(job=job)
    return [{"kind": k.kind, "record": k.label, "reason": k.reason} for k in plan.kept_records], plan


@login_required
@require_http_methods(["GET", "POST"])
def job_revert(request: HttpRequest, pk: int) -> HttpResponse:
    _site_admin(request)
    job = get_object_or_404(ImportJob.objects.select_related("created_by", "course", "reverted_by"), pk=pk)

    if request.method == "POST":
        try:
            import_job_revert_later(
                job=job, user=request.user, confirm_count=_typed_count(request.POST.get("confirm_count", ""))
            )
        except RevertRefused as refused:
            messages.error(request, str(refused))
        else:
            messages.info(request, QUEUED.format(job=job.pk))
        return redirect("lms_import:job-revert", pk=job.pk)

    run = RevertRun.objects.filter(job=job).select_related("requested_by").first()
    refusal = revert_refusal(job_id=job.pk, status=job.status, dry_run=job.dry_run, reverted_at=job.reverted_at)
    event = None
    if job.status == ImportJob.Status.REVERTED:
        event = job.audit_events.filter(action=AuditEvent.Action.REVERT).select_related("actor").first()
    kept, plan = _kept(job, run)
    progress = revert_run_progress(run=run, lock=import_lock_state()) if run else None
    return render(
        request,
        "lms_import/revert.html",
        {
            "job": job,
            "refusal": refusal,
            "plan": plan,
            "event": event,
            "run": run,
            "progress": progress,
            "kept_page": Paginator(kept, KEPT_PER_PAGE).get_page(request.GET.get("kept_page")) if kept else None,
            "confirm_count": revert_confirm_count(job=job),
            "lease_seconds": settings.IMPORT_LOCK_LEASE_SECONDS,
            "job_page": reverse("lms_import:job", args=[job.pk]),
        },
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


@login_required
@require_GET
@never_cache  # learners' names and e-mails
def job_revert_kept(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """Every record the revert keeps (or kept) and why, as CSV; every cell formula-safe."""
    _site_admin(request)
    job = get_object_or_404(ImportJob, pk=pk)
    kept, _ = _kept(job, RevertRun.objects.filter(job=job).first())
    writer = csv.writer(_Echo())
    rows = [["kind", "record", "reason"]] + [[k["kind"], k["record"], k["reason"]] for k in kept or []]
    response = StreamingHttpResponse(
        (writer.writerow([csv_safe(cell) for cell in row]) for row in rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-revert-kept.csv"'
    return response
