from django.urls import path

from lms_import import revert_views

from . import template_views, views

app_name = "lms_import"

urlpatterns = [
    path("import/", views.import_home, name="home"),
    path("import/course-records/", views.course_records, name="course-records"),
    path("import/course-records/history/", views.job_history, name="history"),
    path("import/course-records/holding/", views.holding, name="holding"),
    path("import/course-records/unlock/", views.unlock, name="unlock"),
    path("import/jobs/<int:pk>/", views.job_detail, name="job"),
    path("import/jobs/<int:pk>/progress/", views.job_progress, name="job-progress"),
    path("import/jobs/<int:pk>/mapping/", views.job_mapping, name="job-mapping"),
    path("import/jobs/<int:pk>/error-report/", views.job_error_report, name="job-error-report"),
    path("import/jobs/<int:pk>/revert/", revert_views.job_revert, name="job-revert"),
    path("import/jobs/<int:pk>/revert/kept.csv", revert_views.job_revert_kept, name="job-revert-kept"),
    path("courses/<path:external_course_id>/import/", views.course_records, name="course-import"),
    # Templates (SPEC §13): the file to fill in, as CSV or Excel.
    path(
        "courses/<path:external_course_id>/import/template.csv",
        template_views.course_template,
        {"kind": "csv"},
        name="template-course-csv",
    ),
    path(
        "courses/<path:external_course_id>/import/template.xlsx",
        template_views.course_template,
        {"kind": "xlsx"},
        name="template-course-xlsx",
    ),
    path(
        "import/course-records/template.csv",
        template_views.global_template,
        {"kind": "csv"},
        name="template-global-csv",
    ),
    path(
        "import/course-records/template.xlsx",
        template_views.global_template,
        {"kind": "xlsx"},
        name="template-global-xlsx",
    ),
]
