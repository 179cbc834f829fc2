"""Review API (people only): a version's annotations, create, resolve, reopen.

The rules are `approvals.annotations`; refusals keep their workflow code (`open_annotations`,
`invalid_anchor`, `already_decided`…) with the HTTP status of `approvals.errors.HTTP_STATUS`.
Signatures (decisions, withdrawal, recall) are given on the review screens only, where
Part 11 re-authentication and the second factor are asked: the API signs nothing.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from cms.api.auth import people_only
from content.models import ModuleVersion

from .. import annotations
from ..errors import HTTP_STATUS, ApprovalError
from ..models import Annotation
from .serializers import AnnotationCreateSerializer, AnnotationNoteSerializer, AnnotationSerializer


class WorkflowRefusal(exceptions.APIException):
    """An `ApprovalError` in the API's error shape, with its own code and status."""

    def __init__(self, refusal: ApprovalError):
        self.status_code = HTTP_STATUS.get(refusal.code, 400)
        super().__init__(detail=refusal.message, code=refusal.code)


def _version(request, code: str, number: int) -> ModuleVersion:
    people_only(request.user)
    return get_object_or_404(
        ModuleVersion.objects.restrict(request.user, "view").select_related("module"),
        module__code=code, number=number)


def _annotation(request, pk: int) -> Annotation:
    people_only(request.user)
    return get_object_or_404(
        Annotation.objects.restrict(request.user, "view").select_related(
            "version__module", "author", "resolved_by"), pk=pk)


def _refused(fn, **kwargs):
    try:
        return fn(**kwargs)
    except ApprovalError as refusal:
        raise WorkflowRefusal(refusal) from None


@extend_schema(tags=["review"])
class VersionAnnotationsView(APIView):
    """Annotations of a module version (every round), oldest first; people who may see the
    version's brand only."""

    @extend_schema(responses=AnnotationSerializer(many=True))
    def get(self, request, code: str, number: int):
        version = _version(request, code, number)
        rows = annotations.annotations_for(version).select_related("version__module")
        return Response(AnnotationSerializer(rows, many=True).data)

    @extend_schema(request=AnnotationCreateSerializer, responses={201: AnnotationSerializer})
    def post(self, request, code: str, number: int):
        """Annotate the version for an MLR role you hold and may decide (in review, before
        your role decided this round). Codes: invalid_state, role_not_held, own_version,
        second_role, already_decided, unknown_anchor, invalid_anchor, comment_required,
        too_long."""
        version = _version(request, code, number)
        data = AnnotationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        created = _refused(annotations.create_annotation, version=version, actor=request.user,
                           **data.validated_data)
        return Response(AnnotationSerializer(created).data, status=status.HTTP_201_CREATED)


class _AnnotationStateView(APIView):
    change = None

    @extend_schema(tags=["review"], request=AnnotationNoteSerializer,
                   responses=AnnotationSerializer)
    def post(self, request, pk: int):
        annotation = _annotation(request, pk)
        data = AnnotationNoteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changed = _refused(type(self).change, annotation=annotation, actor=request.user,
                           note=data.validated_data.get("note", ""))
        return Response(AnnotationSerializer(changed).data)


class ResolveAnnotationView(_AnnotationStateView):
    """Resolve an open annotation: a reviewer of its role who is not an author, or an author
    who may submit the version. Codes: not_permitted, invalid_state."""

    change = staticmethod(annotations.resolve_annotation)


class ReopenAnnotationView(_AnnotationStateView):
    """Reopen a resolved annotation: a reviewer of its role, unless that role approved in
    the open round. Codes: not_permitted, invalid_state."""

    change = staticmethod(annotations.reopen_annotation)
