"""/api/v1/imports/… (the router's names: api:import-list, api:import-detail, api:import-confirm, …), /api/schema/
(OpenAPI 3) and /api/docs/ (Swagger UI, its assets served from drf-spectacular-sidecar's static files).

The schema and its page are for whoever may use the API: import staff and site admins, like every other page (a
token or a session for the schema; the page sends others to the login, as the import pages do)."""

from django.contrib.auth.decorators import login_required, permission_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from .views import ImportJobViewSet, ImportStaff

app_name = "api"

router = SimpleRouter()
router.register("imports", ImportJobViewSet, basename="import")

urlpatterns = [
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(permission_classes=[ImportStaff]), name="schema"),
    # The split view serves its script from a URL of its own: no inline script for a Content-Security-Policy.
    path(
        "docs/",
        login_required(
            permission_required("lms_import.import_course_records", raise_exception=True)(
                SpectacularSwaggerSplitView.as_view(url_name="api:schema")
            )
        ),
        name="docs",
    ),
]
