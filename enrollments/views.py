"""The PARS report and certificates (SPEC §9, §10): thin views over enrollments.pars and .certificates."""

import re
from collections.abc import Callable

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from courses.models import Course

from .certificates import (
    HOW_TO_GET_ONE,
    REFUSED_SHELL,
    certificate_for,
    certificate_pdf,
    certificate_refusal,
    certified,
)
from .models import Enrollment
from .pars import (
    LEFT_OUT_REASONS,
    MISSING_PER_PAGE,
    MISSING_REASONS,
    NOT_COUNTED,
    OTHER_NOT_IN_FILE,
    ParsReport,
    missing_csv,
    pars_missing_page,
    pars_report,
    pars_summary,
)


def can_see_pars(user) -> bool:
    """PARS holds learners' dates of birth and license numbers: site admins and whoever may view enrollments."""
    return user.is_active and (user.is_superuser or user.has_perm("enrollments.view_enrollment"))


class ParsFilterForm(forms.Form):
    activity = forms.ChoiceField(label="Activity", required=False)
    date_from = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        ids = (
            Course.objects.filter(kind=Course.KIND_COURSE)
            .exclude(pars_activity_id="")
            .order_by("pars_activity_id")
            .values_list("pars_activity_id", flat=True)
            .distinct()
        )
        self.fields["activity"].choices = [("", "All activities")] + [(i, i) for i in ids]

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError("The period's start is after its end.")
        return data

    def report_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "activity": data.get("activity") or None,
            "date_from": data.get("date_from"),
            "date_to": data.get("date_to"),
        }


def _pars_form(request: HttpRequest) -> ParsFilterForm:
    if not can_see_pars(request.user):
        raise PermissionDenied("The PARS report is for site admins.")
    return ParsFilterForm(request.GET)


class MissingPage:
    """One page of the missing-data list, shaped like a Paginator page for the template's pager."""

    def __init__(self, summary, reason: str, number: int):
        self.count = summary.missing_by_reason[reason] if reason else summary.missing_count
        self.num_pages = max(1, -(-self.count // MISSING_PER_PAGE))
        self.number = min(max(1, number), self.num_pages)
        offset = (self.number - 1) * MISSING_PER_PAGE
        self.items = pars_missing_page(summary, reason=reason, offset=offset) if self.count else []
        self.start_index = offset + 1 if self.items else 0
        self.end_index = offset + len(self.items)


def _page_number(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 1


@login_required
@require_GET
def pars_report_page(request: HttpRequest) -> HttpResponse:
    """Counts by grouped queries and one page of the missing-data list: the page stays small and quick however
    many learners an activity has; the files carry every row."""
    form = _pars_form(request)
    report = pars_summary(**form.report_kwargs()) if form.is_valid() else None
    reason = request.GET.get("reason", "")
    reason = reason if reason in MISSING_REASONS else ""
    filters = request.GET.copy()
    for name in ("reason", "page"):
        filters.pop(name, None)
    return render(
        request,
        "enrollments/pars_report.html",
        {
            "form": form,
            "report": report,
            "missing_page": MissingPage(report, reason, _page_number(request.GET.get("page"))) if report else None,
            "reason": reason,
            "reason_text": MISSING_REASONS.get(reason, ""),
            "left_out_reasons": LEFT_OUT_REASONS,
            "not_counted_reason": NOT_COUNTED,
            "other_reason": OTHER_NOT_IN_FILE,
            "query": filters.urlencode(),
        },
    )


def _pars_csv(request: HttpRequest, stem: str, text: Callable[[ParsReport], str]) -> HttpResponse:
    """The report for the page's filters as a CSV download named after its activity and today's date."""
    form = _pars_form(request)
    if not form.is_valid():
        raise Http404("Correct the report's filters first.")
    kwargs = form.report_kwargs()
    report = pars_report(**kwargs)
    which = re.sub(r"[^A-Za-z0-9_-]", "", kwargs["activity"] or "") or "all"
    name = f"{stem}-{which}-{timezone.localdate():%Y%m%d}.csv"
    # UTF-8 with a BOM, like the error report: a spreadsheet then shows accented names correctly.
    response = HttpResponse(("\ufeff" + text(report)).encode("utf-8"), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
@require_GET
@never_cache  # learners' dates of birth and license numbers: no copy in a browser's or proxy's cache
def pars_learners_csv(request: HttpRequest) -> HttpResponse:
    return _pars_csv(request, "pars-learners", lambda report: report.csv_text())


@login_required
@require_GET
@never_cache
def pars_missing_csv(request: HttpRequest) -> HttpResponse:
    """Every completion kept out of the learner file for missing data, with what it misses (the page lists them
    a page at a time)."""
    return _pars_csv(request, "pars-missing-data", lambda report: missing_csv(report.missing))


# -- certificates --------------------------------------------------------------------------------------
def _enrollment_for(request: HttpRequest, pk: int) -> Enrollment:
    """The learner's own enrollment (any, for a site admin). Another learner's answers 404 like a missing one,
    so that nobody can find out which ids exist."""
    enrollments = Enrollment.objects.select_related("course", "user")
    if not request.user.is_superuser:
        enrollments = enrollments.filter(user=request.user)
    return get_object_or_404(enrollments, pk=pk)


def _refusal(enrollment: Enrollment) -> str | None:
    return certificate_refusal(
        course_kind=enrollment.course.kind,
        certificate_enabled=enrollment.course.certificate_enabled,
        complete=enrollment.complete,
        source=enrollment.source,
    )


CERTIFICATES_PER_PAGE = 50


class CertificateSearchForm(forms.Form):
    q = forms.CharField(label="Learner", required=False, max_length=200, help_text="Name or e-mail, or part of it.")
    course = forms.ModelChoiceField(
        label="Course",
        required=False,
        empty_label="All courses",
        queryset=Course.objects.filter(kind=Course.KIND_COURSE, certificate_enabled=True).order_by(
            "external_course_id"
        ),
    )
    job = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def filter(self, enrollments):
        data = self.cleaned_data
        for word in (data.get("q") or "").split():
            enrollments = enrollments.filter(
                Q(user__first_name__icontains=word)
                | Q(user__last_name__icontains=word)
                | Q(user__email__icontains=word)
                | Q(user__username__icontains=word)
            )
        if data.get("course"):
            enrollments = enrollments.filter(course=data["course"])
        if data.get("job"):
            enrollments = enrollments.filter(import_job_id=data["job"])
        return enrollments


@login_required
@require_GET
def certificate_list(request: HttpRequest) -> HttpResponse:
    """A learner's own completions; for a site admin every certificate, searched and paged (a page is one query
    for its rows and one for the count, whatever the number of certificates)."""
    if not request.user.is_superuser:
        enrollments = Enrollment.objects.filter(user=request.user, complete=True).select_related("course")
        rows = [(e, _refusal(e)) for e in enrollments.order_by("-date_completed", "-id")]
        return render(request, "enrollments/certificate_list.html", {"rows": rows})
    form = CertificateSearchForm(request.GET)
    certificates = Enrollment.objects.none()
    if form.is_valid():
        certificates = (
            form.filter(Enrollment.objects.filter(certified()))
            .select_related("user", "course")
            .only(
                "date_completed",
                "import_job_id",
                "user__username",
                "user__email",
                "user__first_name",
                "user__last_name",
                "course__external_course_id",
                "course__title",
            )
            .order_by("-date_completed", "-id")
        )
    page = Paginator(certificates, CERTIFICATES_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "enrollments/certificate_list.html",
        {
            "form": form,
            "every_learner": True,
            "certificates_page": page,
            "job": form.cleaned_data.get("job") if form.is_valid() else None,
            "query": query.urlencode(),
        },
    )


@login_required
@require_GET
@never_cache
def certificate_page(request: HttpRequest, pk: int) -> HttpResponse:
    enrollment = _enrollment_for(request, pk)
    refusal = _refusal(enrollment)
    certificate = certificate_for(enrollment)
    return render(
        request,
        "enrollments/certificate.html",
        {
            "enrollment": enrollment,
            "refusal": refusal,
            "how_to": HOW_TO_GET_ONE if refusal == REFUSED_SHELL else "",
            "certificate": certificate,
            "completed_text": certificate.completed_text(timezone.get_current_timezone()),
        },
    )


@login_required
@require_GET
@never_cache
def certificate_pdf_download(request: HttpRequest, pk: int) -> HttpResponse:
    enrollment = _enrollment_for(request, pk)
    refusal = _refusal(enrollment)
    if refusal:
        raise Http404(refusal)
    pdf = certificate_pdf(certificate_for(enrollment), timezone.get_current_timezone())
    course = re.sub(r"[^A-Za-z0-9_-]", "", enrollment.course.external_course_id) or "course"
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="certificate-{course}-{enrollment.pk}.pdf"'
    return response
