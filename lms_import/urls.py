from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

# The admin names the product, not "Django administration".
admin.site.site_header = "Course record importer: administration"
admin.site.site_title = "Course record importer admin"
admin.site.index_title = "Courses, credits, records and imports"

urlpatterns = [
    path("", RedirectView.as_view(url="/import/", permanent=False)),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include("lms_import.api.urls")),  # /api/v1/imports/…, /api/schema/, /api/docs/
    path("", include("lms_import.web.urls")),  # /import/…, /courses/<external_course_id>/import/
    path("", include("enrollments.urls")),  # /reports/pars/, /certificates/<enrollment id>/
]
