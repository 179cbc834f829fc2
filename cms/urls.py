from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from .health import healthz, readyz

api_v1 = [
    path("", include("content.api.urls")),
    path("", include("approvals.api.urls")),
    path("", include("journeys.api.urls")),
    path("", include("delivery.api.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("review/", include("approvals.urls")),
    path("journeys/", include("journeys.urls")),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    # Media (uploaded, re-encoded images) from local disk; nosniff comes from middleware.
    re_path(r"^media/(?P<path>.*)$", lambda request, path: serve(
        request, path, document_root=settings.MEDIA_ROOT)),  # read per request: tests move it
    path("", include("content.urls")),
]

# JSON error bodies for /api/ paths outside DRF views; Django's pages elsewhere.
handler400 = "cms.api_errors.handler400"
handler403 = "cms.api_errors.handler403"
handler404 = "cms.api_errors.handler404"
handler500 = "cms.api_errors.handler500"
