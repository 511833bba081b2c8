from django.urls import path

from lms_import import revert_views

app_name = "lms_import"

urlpatterns = [
    path("import/jobs/<int:pk>/revert/", revert_views.job_revert, name="job-revert"),
]
