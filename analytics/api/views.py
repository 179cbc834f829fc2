"""`GET /api/v1/analytics/journeys/{slug}/`: funnel, velocity and coherence of a journey,
time in stage, touchpoint rates, the flows over the map, re-engagement after pauses and
content performance per module version (with 95 % intervals), suppressed below
TESSERA_MIN_COHORT. For people who may view the journey, and for channel
tokens holding the `analytics` scope (an `AnalyticsGrant`) for journeys in their markets."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import APIView

from content.permissions import channel_scope
from journeys.models import Journey

from .. import queries
from ..metrics import Filters
from ..models import AnalyticsGrant
from .serializers import FilterSerializer, JourneyAnalyticsSerializer


def ensure_analytics_scope(user) -> None:
    if channel_scope(user) is None:
        return
    if not AnalyticsGrant.objects.filter(token_id=user.token_id).exists():
        raise exceptions.PermissionDenied(
            "This token lacks the analytics scope (manage.py grant_analytics --token NAME).",
            code="analytics_scope_required")


@extend_schema(
    tags=["analytics"], parameters=[FilterSerializer],
    responses={200: JourneyAnalyticsSerializer,
               403: OpenApiResponse(description="analytics_scope_required"),
               404: OpenApiResponse(description="No journey you may view")},
)
class JourneyAnalyticsView(APIView):
    """A journey's funnel, engagement velocity, coherence, flows, re-engagement and content
    performance per module version (docs/analytics.md)."""

    def get(self, request, slug):
        ensure_analytics_scope(request.user)
        journey = Journey.objects.restrict(request.user, "view").filter(slug=slug).first()
        if journey is None:
            raise exceptions.NotFound("No journey with this slug that you may view.")
        params = FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        d = params.validated_data
        data = queries.journey_analytics(journey, Filters(
            start=d.get("start"), end=d.get("end"), market=d.get("market", ""),
            channel=d.get("channel", "")))
        return Response(JourneyAnalyticsSerializer(data).data)
