"""Journey API: list, and detail (stages, steps, slots, transitions)."""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import generics

from journeys.models import Journey, Slot, Stage, Step, Transition

from .serializers import JourneyDetailSerializer, JourneySummarySerializer

SUMMARY_RELATED = ("brand", "audience", "locale")


@extend_schema(tags=["journeys"])
class JourneyListView(generics.ListAPIView):
    """Journeys you may use (channel tokens: those running in your markets)."""

    serializer_class = JourneySummarySerializer
    filter_backends: list = []

    def get_queryset(self):
        return (Journey.objects.restrict(self.request.user, "view").select_related(*SUMMARY_RELATED)
                .prefetch_related("jurisdictions").order_by("slug"))


@extend_schema(tags=["journeys"])
class JourneyDetailView(generics.RetrieveAPIView):
    """A journey with its stages, steps (each with a key and a channel), slots and
    transitions."""

    serializer_class = JourneyDetailSerializer
    lookup_field = "slug"
    filter_backends: list = []

    def get_queryset(self):
        steps = (Step.objects.select_related("channel").order_by("order", "id").prefetch_related(
            Prefetch("slots", queryset=Slot.objects.select_related("module")
                     .prefetch_related("selector_stages", "selector_specialties")),
            Prefetch("transitions_out", queryset=Transition.objects.select_related("to_step")),
        ))
        stages = (Stage.objects.select_related("audience_stage").order_by("order", "id")
                  .prefetch_related(Prefetch("steps", queryset=steps)))
        return (Journey.objects.restrict(self.request.user, "view").select_related(*SUMMARY_RELATED)
                .prefetch_related("jurisdictions", Prefetch("stages", queryset=stages)))
