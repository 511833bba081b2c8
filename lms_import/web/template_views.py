"""Template downloads (SPEC §13): the file to fill in, for a course or for the global importer, as CSV or .xlsx.

Who may upload may download: login and the import staff permission, like the upload form that links here.
What the files hold is built by lms_import.template_files.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from courses.models import Course
from lms_import.template_files import Template, template_csv, template_for_course, template_global, template_xlsx

from .views import import_staff_required

KINDS = {
    "csv": (template_csv, "text/csv; charset=utf-8"),
    "xlsx": (template_xlsx, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
}


def _download(template: Template, kind: str) -> HttpResponse:
    build, content_type = KINDS[kind]
    response = HttpResponse(build(template), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{template.filename_stem}.{kind}"'
    return response


@require_GET
@import_staff_required
def course_template(request: HttpRequest, external_course_id: str, kind: str) -> HttpResponse:
    course = get_object_or_404(Course, external_course_id=external_course_id, kind=Course.KIND_COURSE)
    return _download(template_for_course(course), kind)


@require_GET
@import_staff_required
def global_template(request: HttpRequest, kind: str) -> HttpResponse:
    return _download(template_global(), kind)
