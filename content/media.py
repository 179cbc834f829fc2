"""Content-addressed media: `/media/a/<asset sha256>/<file sha256>.<ext>`.

The address names the bytes, so they never change: answered with long-lived immutable
caching. The file is hashed on every answer and served only when its bytes hash to the
address (a file changed on disk is a 404, never served under the approved address).
"""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.urls import path
from django.views.decorators.http import require_safe

from .assets import addressed_file

IMMUTABLE = "public, max-age=31536000, immutable"


@require_safe
def serve_addressed(request, asset_sha256: str, file_name: str) -> HttpResponse:
    found = addressed_file(asset_sha256, file_name)
    if found is None:
        raise Http404("No image has this address.")
    response = HttpResponse(found.data, content_type=found.content_type)
    response["Cache-Control"] = IMMUTABLE
    response["ETag"] = f'"{file_name.partition(".")[0]}"'
    response["Content-Length"] = str(len(found.data))
    return response


urlpatterns = [
    path("<str:asset_sha256>/<str:file_name>", serve_addressed, name="media-addressed"),
]
