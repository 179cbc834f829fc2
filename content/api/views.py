"""Module API: list (filtered), detail with versions, one version.

Hot paths read plain dicts from `.values()` (a ModelSerializer costs ~200 µs per object)
and render them with the output serializers, so the schema is the code. Where-used and
unused versions count deliveries, so they are served by `delivery.api`.
"""

from __future__ import annotations

import bisect
import hashlib
import json

from django.db.models import Exists, OuterRef
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.http import parse_etags
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics
from rest_framework.exceptions import ErrorDetail
from rest_framework.response import Response
from rest_framework.views import APIView

from cms.api.auth import channel_client, ensure_in_scope
from cms.lru import LRUCache
from content.models import ContentModule, ModuleVersion

from . import prepared, selectors
from .filters import ModuleVersionFilter
from .serializers import ModuleDetailSerializer, ModuleSerializer, VersionDetailSerializer

FILTER_PARAMETERS = [
    OpenApiParameter(name, OpenApiTypes.STR, description=description)
    for name, description in [
        ("audience", "Audience code, e.g. hcp"),
        ("stage", "Journey stage code, e.g. awareness"),
        ("jurisdiction", "ISO 3166-1 alpha-2 code, e.g. US"),
        ("channel", "Channel code: email, portal, rep, sms, webinar"),
        ("locale", "BCP 47 locale, e.g. en"),
        ("state", "Version state: draft, in_review, changes_requested, approved, expired, withdrawn"),
        ("kind", "Module kind, e.g. claim, isi, headline"),
        ("brand", "Brand slug"),
    ]
]


def _filtered_versions(request):
    ensure_in_scope(request.user, channel=request.query_params.get("channel") or None,
                    jurisdiction=request.query_params.get("jurisdiction") or None)
    filterset = ModuleVersionFilter(request.query_params,
                                    queryset=ModuleVersion.objects.restrict(request.user, "view"))
    if not filterset.is_valid():
        raise invalid_filters(filterset.errors)
    return filterset.qs


def invalid_filters(errors) -> exceptions.ValidationError:
    return exceptions.ValidationError({
        name: [ErrorDetail(e["message"], code=e["code"]) for e in field_errors]
        for name, field_errors in errors.get_json_data().items()
    })


def module_or_404(request, code: str) -> ContentModule:
    """The module with `code` if the caller may see one of its versions, else 404."""
    return get_object_or_404(ContentModule.objects.restrict(request.user, "view"), code=code.upper())


@extend_schema(tags=["modules"], parameters=FILTER_PARAMETERS)
class ModuleListView(generics.ListAPIView):
    """Modules with the versions you may see (channel tokens: approved, in date, in scope).

    A module is listed when one of its visible versions matches every filter given; only
    the matching versions are shown."""

    serializer_class = ModuleSerializer
    filter_backends: list = []

    def get_queryset(self):
        return ContentModule.objects.none()  # (schema only; list() builds the page itself)

    def list(self, request, *args, **kwargs):
        etag = list_etag(request)
        if etag is None:
            return self.build_page(request)
        data = PAGES.get(etag)
        if data is None:
            data = self.build_page(request).data
            PAGES.put(etag, data)
        headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
        if etag in parse_etags(request.headers.get("If-None-Match", "")):
            return Response(status=304, headers=headers)
        return Response(data, headers=headers)

    # Channel tokens' pages in prepared SQL (content.api.prepared); False: the ORM path
    # below for everyone (the tests compare both).
    use_prepared_sql = True

    def build_page(self, request) -> Response:
        client = channel_client(request)
        if client is not None and self.use_prepared_sql and prepared.SUPPORTED:
            return self.build_prepared_page(request, client)
        versions = _filtered_versions(request)
        modules = (ContentModule.objects
                   .filter(Exists(versions.filter(module_id=OuterRef("pk"))))
                   .order_by("code").values(*selectors.MODULE_FIELDS))
        page = self.paginate_queryset(modules)
        return self.get_paginated_response(
            ModuleSerializer(selectors.module_dicts(page, versions), many=True).data)

    def build_prepared_page(self, request, client) -> Response:
        """The same page as build_page's ORM path, in SQL prepared per scope shape."""
        ensure_in_scope(client, channel=request.query_params.get("channel") or None,
                        jurisdiction=request.query_params.get("jurisdiction") or None)
        form = prepared.FORM(request.query_params)
        if not form.is_valid():
            raise invalid_filters(form.errors)
        rows = prepared.module_rows(client, form.cleaned_data)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(
            prepared.render(selectors.with_versions(page, rows.versions(page))))


# Module list pages of channel tokens, by ETag: what a token sees depends only on its scope,
# the filters and page asked for, the catalog (its epoch) and which validity boundaries
# (valid_from, expires_at of approved versions) have passed — the ETag hashes exactly
# these, so a polling channel gets 304 (or the cached page) until one of them changes.
# People's visibility also follows their permissions, which the epoch does not cover:
# their pages are built every time, without an ETag.
PAGES = LRUCache(1_024, name="content.module_list_pages")
BOUNDARIES = LRUCache(8, name="content.validity_boundaries")  # by catalog epoch


def validity_boundaries(epoch: int) -> tuple:
    """Every time an approved version enters or leaves its window (one query per epoch)."""
    found = BOUNDARIES.get(epoch)
    if found is None:
        found = tuple(sorted({t for row in prepared.approved_windows() for t in row
                              if t is not None}))
        BOUNDARIES.put(epoch, found)
    return found


def list_etag(request) -> str | None:
    client = channel_client(request)
    if client is None or client.epoch is None:
        return None
    passed = bisect.bisect_right(validity_boundaries(client.epoch), timezone.now())
    identity = json.dumps([
        sorted(client.channels), sorted(client.jurisdictions),
        sorted(request.query_params.lists()), request.build_absolute_uri("/"),
        client.epoch, passed])
    return '"' + hashlib.sha256(identity.encode()).hexdigest()[:40] + '"'


@extend_schema(tags=["modules"], responses=ModuleDetailSerializer)
class ModuleDetailView(APIView):
    """One module with every version you may see, content included."""

    def get(self, request, code: str):
        module = module_or_404(request, code)
        row = {"id": module.pk, "code": module.code, "brand__slug": module.brand.slug,
               "kind": module.kind, "purpose": module.purpose, "title": module.title}
        versions = ModuleVersion.objects.restrict(request.user, "view")
        return Response(ModuleDetailSerializer(
            selectors.module_dicts([row], versions, content=True)[0]).data)


@extend_schema(tags=["modules"], responses=VersionDetailSerializer)
class ModuleVersionDetailView(APIView):
    """One version of a module (visible to you), content included."""

    def get(self, request, code: str, number: int):
        module = module_or_404(request, code)
        versions = ModuleVersion.objects.restrict(request.user, "view").filter(
            module=module, number=number)
        found = selectors.version_dicts(versions, content=True)
        if not found:
            raise exceptions.NotFound(f"{module.code} has no version {number} visible to you.")
        return Response(VersionDetailSerializer(found[0]).data)
