from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from .health import healthz, readyz

# Each app's API, top floor first: delivery serves a few URLs under modules/ and journeys/
# (where-used, unused, assemble) that must be matched before content's modules/<code>/.
# Every pattern is a full match, so the order changes nothing else.
api_v1 = [
    path("", include("orchestration.api.urls")),
    path("", include("analytics.api.urls")),
    path("", include("delivery.api.urls")),
    path("", include("journeys.api.urls")),
    path("", include("approvals.api.urls")),
    path("", include("content.api.urls")),
]

urlpatterns = [
    # First: the channels' calls (one per recipient) are the most frequent requests, and
    # Django tries the patterns in order. No other pattern starts with api/v1/.
    path("api/v1/", include(api_v1)),
    path("admin/", admin.site.urls),
    path("", include("analytics.urls")),  # /journeys/<slug>/analytics/, /review/governance/
    path("review/", include("approvals.urls")),
    path("", include("orchestration.urls")),  # /journeys/<slug>/simulate/
    path("journeys/", include("journeys.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    # Images as delivered: content-addressed, verified on every answer, cached for good.
    path("media/a/", include("content.media")),
    # Media (uploaded, re-encoded images) from local disk; nosniff comes from middleware.
    re_path(r"^media/(?P<path>.*)$", lambda request, path: serve(
        request, path, document_root=settings.MEDIA_ROOT)),  # read per request: tests move it
    path("", include("content.urls")),
]

# JSON error bodies for /api/ paths outside DRF views; Django's pages elsewhere.
handler400 = "cms.api.errors.handler400"
handler403 = "cms.api.errors.handler403"
handler404 = "cms.api.errors.handler404"
handler500 = "cms.api.errors.handler500"
