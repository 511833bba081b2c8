"""/api/v1/imports/… (the router's names: api:import-list, api:import-detail, api:import-confirm, …), /api/schema/
(OpenAPI 3) and /api/docs/ (Swagger UI, its assets served from drf-spectacular-sidecar's static files)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from .views import ImportJobViewSet

app_name = "api"

router = SimpleRouter()
router.register("imports", ImportJobViewSet, basename="import")

urlpatterns = [
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its script from a URL of its own: no inline script for a Content-Security-Policy.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
]
