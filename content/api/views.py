"""Module API: list (filtered), detail with versions, one version.

Hot paths read plain dicts from `.values()` (a ModelSerializer costs ~200 µs per object)
and render them with the output serializers, so the schema is the code. Where-used and
unused versions count deliveries, so they are served by `delivery.api`.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics
from rest_framework.exceptions import ErrorDetail
from rest_framework.response import Response
from rest_framework.views import APIView

from cms.api.auth import ensure_in_scope
from content.models import ContentModule, ModuleVersion

from . import selectors
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
        raise exceptions.ValidationError({
            name: [ErrorDetail(e["message"], code=e["code"]) for e in errors]
            for name, errors in filterset.errors.get_json_data().items()
        })
    return filterset.qs


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
        versions = _filtered_versions(request)
        modules = (ContentModule.objects
                   .filter(Exists(versions.filter(module_id=OuterRef("pk"))))
                   .order_by("code").values(*selectors.MODULE_FIELDS))
        page = self.paginate_queryset(modules)
        return self.get_paginated_response(
            ModuleSerializer(selectors.module_dicts(page, versions), many=True).data)


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
