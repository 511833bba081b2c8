"""/api/v1/imports/…: thin views over lms_import.services, with the web's permissions (SPEC §12).

Import staff (lms_import.import_course_records) upload, follow, confirm and cancel; site admins also revert.
Uploads over IMPORT_MAX_UPLOAD_BYTES are refused while they arrive, by the web's upload handler, and files that are
not CSV files by the services' check that the web's form uses too: no job is made for a refused upload.
"""

import logging

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from core.findings import W_AUTO_COMPLETE, Finding
from lms_import.models import ImportJob
from lms_import.revert import RevertRefused
from lms_import.selectors import (
    CONFIRM_ACCOUNTS,
    CONFIRM_SKIPPED,
    import_lock_state,
    job_confirmable,
    job_needs_acknowledgment,
    revert_run_progress,
)
from lms_import.services import (
    E_CONFIRM_COUNT,
    ConfirmCountRefused,
    ImportRefused,
    RevertUnconfirmed,
    UploadRefused,
    import_job_cancel,
    import_job_confirm,
    import_job_create,
    import_job_revert_later,
    upload_too_large,
)
from lms_import.web.uploads import SizeLimitedUploadHandler

from .errors import Refused
from .serializers import (
    LIST_ERRORS,
    ConfirmSerializer,
    ErrorSerializer,
    FindingSerializer,
    JobSerializer,
    RevertRequestSerializer,
    RevertSerializer,
    UploadSerializer,
)

log = logging.getLogger(__name__)
PERMISSION = "lms_import.import_course_records"
JOB_STATE = "JOB_STATE"  # the code of a transition the job's state does not allow (409)
ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Refused; the codes are the importer's (F_*, E_*)."),
    401: OpenApiResponse(ErrorSerializer, description="No or a wrong token (Authorization: Token KEY)."),
    403: OpenApiResponse(
        ErrorSerializer, description="Without the permission to import (or, to revert, a site admin)."
    ),
    404: OpenApiResponse(ErrorSerializer, description="No such job."),
}


class Pages(PageNumberPagination):
    """?page=N (REST_FRAMEWORK's PAGE_SIZE a page), or ?page_size=M up to 500."""

    page_size_query_param = "page_size"
    max_page_size = 500


class ImportStaff(BasePermission):
    """The web's import pages: users holding lms_import.import_course_records (site admins hold every permission)."""

    message = "You need the permission to import course records (lms_import.import_course_records)."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.has_perm(PERMISSION))


class SiteAdmin(BasePermission):
    message = "Only site admins can revert imports."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_superuser)


@extend_schema_view(
    list=extend_schema(
        summary="Import jobs, newest first",
        parameters=[
            OpenApiParameter("status", str, enum=ImportJob.Status.values, description="Only jobs in this status."),
            OpenApiParameter("course", str, description="Only jobs of this course (external_course_id)."),
        ],
        responses={200: JobSerializer(many=True), **ERRORS},
    ),
    retrieve=extend_schema(summary="One import job", responses={200: JobSerializer, **ERRORS}),
)
class ImportJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [ImportStaff]
    serializer_class = JobSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    pagination_class = Pages
    queryset = ImportJob.objects.select_related("course", "created_by", "mapping")

    def initialize_request(self, request, *args, **kwargs) -> Request:
        # Before anything reads the body (the session's CSRF check does, during authentication): the web's handler
        # stops an upload over the limit as it arrives, and nothing of it is kept.
        self.limiter = None
        if request.method == "POST":
            self.limiter = SizeLimitedUploadHandler(request, limit=settings.IMPORT_MAX_UPLOAD_BYTES)
            request.upload_handlers.insert(0, self.limiter)
        return super().initialize_request(request, *args, **kwargs)

    def get_queryset(self):
        jobs = super().get_queryset()
        if self.action != "list":
            return jobs
        wanted = self.request.query_params.get("status")
        if wanted:
            if wanted not in ImportJob.Status.values:
                raise Refused(
                    Finding("E_VALUE_INVALID", f"status must be one of {', '.join(ImportJob.Status.values)}.")
                )
            jobs = jobs.filter(status=wanted)
        course = self.request.query_params.get("course")
        if course:
            jobs = jobs.filter(course__external_course_id=course)
        return jobs

    def get_serializer_context(self) -> dict:
        context = super().get_serializer_context() | {"lock": import_lock_state()}
        if getattr(self, "action", None) == "list":
            context["errors"] = LIST_ERRORS
        return context

    def _job(self, job: ImportJob, status_code: int = status.HTTP_200_OK) -> Response:
        job.refresh_from_db()
        return Response(JobSerializer(job, context=self.get_serializer_context()).data, status=status_code)

    # -- upload -------------------------------------------------------------------------------------------
    @extend_schema(
        summary="Upload a file: a job whose validation is queued",
        request={"multipart/form-data": UploadSerializer},
        responses={
            202: JobSerializer,
            413: OpenApiResponse(ErrorSerializer, description="F_TOO_LARGE: over IMPORT_MAX_UPLOAD_BYTES."),
            **ERRORS,
        },
    )
    def create(self, request: Request) -> Response:
        data = request.data  # parsed here (or by the CSRF check): the limiter has seen the file by now
        if self.limiter is not None and self.limiter.too_large:
            finding = upload_too_large(size=self.limiter.refused_size, limit=self.limiter.limit)
            raise Refused(_on_file(finding), status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        upload = UploadSerializer(data=data)
        upload.is_valid(raise_exception=True)
        fields = upload.validated_data
        try:
            job = import_job_create(
                user=request.user,
                importer=fields["importer"],
                course=fields["course_object"],
                upload=fields["file"],
                filename=fields["file"].name,
                skip_invalid=fields["skip_invalid"],
                create_accounts=fields["create_accounts"],
                allow_auto_complete=fields["allow_auto_complete"],
                auto_confirm=fields["auto_confirm"],
                sheet=fields.get("sheet", ""),
                mapping=fields.get("mapping"),
                source=ImportJob.SOURCE_API,
                queue_validation=True,
            )
        except UploadRefused as refused:
            raise Refused(_on_file(refused.finding)) from refused
        response = self._job(job, status.HTTP_202_ACCEPTED)
        response["Location"] = response.data["links"]["self"]
        return response

    # -- the buttons --------------------------------------------------------------------------------------
    @extend_schema(
        summary="Import a validated job (the page's Import button)",
        request=ConfirmSerializer,
        responses={
            202: JobSerializer,
            409: OpenApiResponse(
                ErrorSerializer,
                description="Not waiting for it (JOB_STATE, ROW_ERRORS), or the acknowledgment (W_AUTO_COMPLETE) "
                "or a number above IMPORT_CONFIRM_THRESHOLD (E_CONFIRM_COUNT: confirm_skipped, confirm_accounts) "
                "is missing.",
            ),
            **ERRORS,
        },
    )
    @action(detail=True, methods=["post"])
    def confirm(self, request: Request, pk=None) -> Response:
        job = self.get_object()
        acknowledged = ConfirmSerializer(data=request.data)
        acknowledged.is_valid(raise_exception=True)
        acknowledge = acknowledged.validated_data["allow_auto_complete"]
        typed = {field: acknowledged.validated_data.get(field) for field in (CONFIRM_SKIPPED, CONFIRM_ACCOUNTS)}
        refusal = confirm_refusal(job, acknowledge=acknowledge)
        if refusal is not None:
            raise Refused(refusal, status_code=status.HTTP_409_CONFLICT)
        try:
            job = import_job_confirm(job=job, user=request.user, acknowledge_auto_complete=acknowledge, typed=typed)
        except ConfirmCountRefused as refused:
            value = "" if refused.given is None else str(refused.given)
            finding = Finding(refused.code, str(refused), column=refused.field, value=value)
            raise Refused(finding, status_code=status.HTTP_409_CONFLICT) from refused
        except ImportRefused as refused:
            raise Refused(Finding(JOB_STATE, str(refused)), status_code=status.HTTP_409_CONFLICT) from refused
        return self._job(job, status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Cancel a job not yet confirmed (the page's Cancel button)",
        request=None,
        responses={200: JobSerializer, 409: OpenApiResponse(ErrorSerializer), **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk=None) -> Response:
        try:
            job = import_job_cancel(job=self.get_object(), user=request.user)
        except ImportRefused as refused:
            raise Refused(Finding(JOB_STATE, str(refused)), status_code=status.HTTP_409_CONFLICT) from refused
        return self._job(job)

    @extend_schema(
        summary="Revert a succeeded import (site admins): queued for a worker",
        description="A revert deciding on more than IMPORT_CONFIRM_THRESHOLD records (everything the job created) "
        "needs `confirm_count`, that number, as the page's typed confirmation does. GET the job to follow it: "
        "`revert` has the run's status and progress, then the job is `reverted`.",
        request=RevertRequestSerializer,
        responses={
            202: RevertSerializer,
            409: OpenApiResponse(
                ErrorSerializer,
                description="Not revertible now (reverted, not succeeded, under way: JOB_STATE), or the number to "
                "type above IMPORT_CONFIRM_THRESHOLD records is missing or wrong (E_CONFIRM_COUNT: confirm_count).",
            ),
            **ERRORS,
        },
    )
    @action(detail=True, methods=["post"], permission_classes=[SiteAdmin])
    def revert(self, request: Request, pk=None) -> Response:
        job = self.get_object()
        asked = RevertRequestSerializer(data=request.data)
        asked.is_valid(raise_exception=True)
        try:
            run = import_job_revert_later(
                job=job, user=request.user, confirm_count=asked.validated_data["confirm_count"]
            )
        except RevertUnconfirmed as unconfirmed:
            given = asked.validated_data["confirm_count"]
            finding = Finding(
                E_CONFIRM_COUNT, str(unconfirmed), column="confirm_count", value="" if given is None else str(given)
            )
            raise Refused(finding, status_code=status.HTTP_409_CONFLICT) from unconfirmed
        except RevertRefused as refused:
            raise Refused(Finding(JOB_STATE, str(refused)), status_code=status.HTTP_409_CONFLICT) from refused
        job.refresh_from_db()
        context = self.get_serializer_context()
        document = JobSerializer(job, context=context).data
        progress = revert_run_progress(run=run, lock=context["lock"])
        return Response({"job": document, "revert": progress}, status=status.HTTP_202_ACCEPTED)

    # -- findings ------------------------------------------------------------------------------------------
    @extend_schema(
        summary="The job's errors, paginated (the first IMPORT_MAX_STORED_ERRORS; the error report has all)",
        responses={200: FindingSerializer(many=True), **ERRORS},
    )
    @action(detail=True, methods=["get"])
    def errors(self, request: Request, pk=None) -> Response:
        job = self.get_object()
        findings = [{k: e.get(k) for k in ("line", "code", "column", "value", "message")} for e in job.errors]
        page = self.paginate_queryset(findings)
        response = self.get_paginated_response(page)
        response.data["error_count"] = job.error_count
        return response

    @extend_schema(
        summary="The error report CSV (every rejected row as sent, then _line, _codes, _messages)",
        responses={(200, "text/csv"): OpenApiTypes.BINARY, **ERRORS},
    )
    @action(detail=True, methods=["get"], url_path="error-report")
    def error_report(self, request: Request, pk=None) -> FileResponse:
        job = self.get_object()
        if not job.error_report:
            raise NotFound("This job has no error report.")
        try:
            report = job.error_report.open("rb")
        except FileNotFoundError:
            raise NotFound("The error report file is missing (finished jobs' files are removed after a while).")
        response = FileResponse(report, as_attachment=True, filename=f"import-{job.pk}-errors.csv")
        response["Content-Type"] = "text/csv; charset=utf-8"
        return response


def _on_file(finding: Finding) -> Finding:
    """A refused upload's finding, about the request's `file` field."""
    return Finding(finding.code, finding.message, column="file", value=finding.value)


def confirm_refusal(job: ImportJob, *, acknowledge: bool) -> Finding | None:
    """Why the job cannot be confirmed now, with a code, before the service is asked (which would queue an apply
    bound to be refused); None if it can."""
    if job.status != ImportJob.Status.VALIDATED or job.dry_run:
        what = "a dry run, which is never applied" if job.dry_run else job.status
        return Finding(JOB_STATE, f"Job #{job.pk} is {what}; only a validated job waits for confirmation.")
    if job_needs_acknowledgment(job=job) and not acknowledge:
        return Finding(
            W_AUTO_COMPLETE,
            "This course completes enrollments on enrollment (W_AUTO_COMPLETE): confirm with allow_auto_complete=true "
            "to import anyway.",
        )
    if job_confirmable(job=job):
        return None
    if job.rows_invalid and not job.skip_invalid:
        return Finding(
            "ROW_ERRORS",
            f"{job.rows_invalid:,} rows are invalid, so nothing can be imported. Correct them and upload the file "
            "again, or upload it with skip_invalid=true.",
        )
    return Finding(job.failure_code or JOB_STATE, job.failure_message or f"Job #{job.pk} has nothing to import.")
