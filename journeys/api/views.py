"""Journey API: list, detail (stages, steps, slots, transitions), single assembly."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from cms.api_errors import Unprocessable
from content.permissions import visible_brands
from delivery.api.schema import unprocessable
from delivery.api.serializers import AssembleRequestSerializer, AssemblyOutputSerializer
from delivery.serving import Caller, serve_one
from delivery.tokens import ChannelClient, ensure_in_scope, history_as_system
from journeys.assembly import ERROR_CODES
from journeys.models import Journey, Slot, Step, Transition

from .serializers import JourneyDetailSerializer, JourneySummarySerializer


def visible_journeys(user):
    """People: journeys of their brands. Channel tokens: journeys in their markets."""
    if isinstance(user, ChannelClient):
        through = Journey.jurisdictions.through
        return Journey.objects.filter(Exists(through.objects.filter(
            journey_id=OuterRef("pk"), jurisdiction__code__in=user.jurisdictions)))
    return Journey.objects.filter(brand__in=visible_brands(user))


def _summary(journey: Journey) -> dict:
    return {
        "slug": journey.slug, "name": journey.name, "brand": journey.brand.slug,
        "audience": journey.audience.code,
        "jurisdictions": sorted(j.code for j in journey.jurisdictions.all()),
        "locale": journey.locale.code,
    }


def _slot(slot: Slot) -> dict:
    selector = None
    if slot.module_id is None:
        selector = {
            "kind": slot.selector_kind,
            "stages": sorted(s.code for s in slot.selector_stages.all()),
            "specialties": sorted(s.code for s in slot.selector_specialties.all()),
            "priority": slot.priority,
        }
    return {"order": slot.order, "module": slot.module.code if slot.module_id else None,
            "selector": selector, "required": slot.required}


def _transition(t: Transition) -> dict:
    return {"event": t.event_type, "threshold": t.threshold, "days": t.days,
            "to_step": t.to_step.key if t.to_step_id else None, "pause": t.pause,
            "label": t.label}


def _detail(journey: Journey) -> dict:
    data = _summary(journey)
    data["description"] = journey.description
    steps_by_stage: dict[int, list] = {}
    for step in journey.steps.all():
        steps_by_stage.setdefault(step.stage_id, []).append({
            "key": step.key, "name": step.name, "channel": step.channel.code,
            "owner_function": step.owner_function, "purpose": step.purpose,
            "timing": step.timing, "delay_days": step.delay_days,
            "decision_moment": step.decision_moment, "layout": step.layout,
            "slots": [_slot(s) for s in step.slots.all()],
            "transitions": [_transition(t) for t in step.transitions_out.all()],
        })
    data["stages"] = [
        {"code": stage.audience_stage.code, "name": stage.audience_stage.name,
         "order": stage.order, "steps": steps_by_stage.get(stage.pk, [])}
        for stage in journey.stages.all()
    ]
    return data


SUMMARY_RELATED = ("brand", "audience", "locale")


@extend_schema(tags=["journeys"])
class JourneyListView(generics.ListAPIView):
    """Journeys you may use (channel tokens: those running in your markets)."""

    serializer_class = JourneySummarySerializer
    filter_backends: list = []

    def get_queryset(self):
        return Journey.objects.none()

    def list(self, request, *args, **kwargs):
        journeys = (visible_journeys(request.user).select_related(*SUMMARY_RELATED)
                    .prefetch_related("jurisdictions").order_by("slug"))
        page = self.paginate_queryset(journeys)
        return self.get_paginated_response([_summary(j) for j in page])


@extend_schema(tags=["journeys"], responses=JourneyDetailSerializer)
class JourneyDetailView(APIView):
    """A journey with its stages, steps (each with a key and a channel), slots and
    transitions."""

    def get(self, request, slug: str):
        journey = get_object_or_404(
            visible_journeys(request.user).select_related(*SUMMARY_RELATED).prefetch_related(
                "jurisdictions",
                Prefetch("stages", queryset=journey_stages()),
                Prefetch("steps", queryset=Step.objects.select_related("channel").prefetch_related(
                    Prefetch("slots", queryset=Slot.objects.select_related("module")
                             .prefetch_related("selector_stages", "selector_specialties")),
                    Prefetch("transitions_out",
                             queryset=Transition.objects.select_related("to_step")),
                ).order_by("stage__order", "order", "id")),
            ),
            slug=slug)
        return Response(_detail(journey))


def journey_stages():
    from journeys.models import Stage

    return Stage.objects.select_related("audience_stage").order_by("order", "id")


@extend_schema(
    tags=["assembly"],
    request=AssembleRequestSerializer,
    responses={
        200: AssemblyOutputSerializer,
        422: unprocessable(list(ERROR_CODES), "The step cannot be assembled compliantly for "
                           "this recipient; every reason is listed (`module` names the module)."),
    },
)
class AssembleView(APIView):
    """Assemble one step for one recipient: compliant content, or every reason it cannot be.

    The recipient's data is used and forgotten; the delivery log keeps the manifest and a
    keyed hash of `recipient.id`."""

    def post(self, request, slug: str, key: str):
        data = AssembleRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        body = data.validated_data
        ensure_in_scope(request.user, channel=body["channel"], jurisdiction=body["jurisdiction"])
        step = get_object_or_404(
            Step.objects.filter(journey__in=visible_journeys(request.user)),
            journey__slug=slug, key=key)
        with history_as_system(request):  # serving may update the recipient's enrollment
            result = serve_one(step, body["recipient"], channel=body["channel"],
                               jurisdiction=body["jurisdiction"].upper(), locale=body["locale"],
                               caller=Caller.of(request.user))
        if not result.ok:
            raise Unprocessable([e.as_dict() for e in result.errors])
        return Response({"subject": result.subject, "html": result.html, "text": result.text,
                         "manifest": result.manifest}, status=status.HTTP_200_OK)

