"""Revert of a succeeded import job (SPEC §6): the superuser's confirmation page and POST.

GET shows what a revert would remove and what it would keep (or, for a reverted job, what the revert
did); POST reverts and comes back here with the outcome.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from .models import AuditEvent, ImportJob
from .revert import RevertRefused, import_job_revert, import_job_revert_plan, revert_refusal


@login_required
@require_http_methods(["GET", "POST"])
def job_revert(request: HttpRequest, pk: int) -> HttpResponse:
    if not request.user.is_superuser:
        raise PermissionDenied("Only site admins can revert imports.")
    job = get_object_or_404(ImportJob.objects.select_related("created_by", "course", "reverted_by"), pk=pk)

    if request.method == "POST":
        try:
            result = import_job_revert(job=job, user=request.user)
        except RevertRefused as refused:
            messages.error(request, str(refused))
        else:
            messages.success(request, f"Import #{job.pk} was reverted. {result.summary()}")
        return redirect("lms_import:job-revert", pk=job.pk)

    refusal = revert_refusal(job_id=job.pk, status=job.status, dry_run=job.dry_run, reverted_at=job.reverted_at)
    event = None
    plan = None
    if job.status == ImportJob.Status.REVERTED:
        event = job.audit_events.filter(action=AuditEvent.Action.REVERT).select_related("actor").first()
    elif refusal is None:
        plan = import_job_revert_plan(job=job)
    return render(
        request,
        "lms_import/revert.html",
        {
            "job": job,
            "refusal": refusal,
            "plan": plan,
            "event": event,
            "job_page": reverse("lms_import:job", args=[job.pk]),
        },
    )
