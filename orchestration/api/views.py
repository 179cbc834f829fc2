"""Orchestration API: enrollments, the due queue (lease, ack), outside signals."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiCallback, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from cms.api.auth import ChannelClient, ensure_in_scope, history_as_system
from cms.api.errors import Unprocessable, error
from cms.api.schema import error_response, unprocessable
from journeys.assembly import ERROR_CODES
from journeys.models import Journey, pseudonymous_id
from journeys.recipients import channel_codes

from .. import due_queue, enrollment, lifecycle, tasks, triggers
from ..leases import leased_item
from ..models import ReleaseState
from .serializers import (
    AckRequestSerializer,
    EnrollRequestSerializer,
    EnrollResponseSerializer,
    LeaseResponseSerializer,
    PushSerializer,
    SignalRequestSerializer,
    SignalResponseSerializer,
    TouchpointSerializer,
)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def _journey(user, slug: str) -> Journey:
    action = "view" if isinstance(user, ChannelClient) else "change"
    journey = Journey.objects.restrict(user, action).filter(slug=slug).first()
    if journey is None:
        raise Unprocessable([error("unknown_journey", f"No journey {slug!r} you may use.")])
    return journey


def _token_id(request) -> int:
    if not isinstance(request.user, ChannelClient):
        raise exceptions.PermissionDenied(
            "The due queue belongs to channel tokens: call with Authorization: Token <key>.",
            code="channel_token_required")
    return request.user.token_id


@extend_schema(tags=["orchestration"], request=EnrollRequestSerializer,
               responses={200: EnrollResponseSerializer,
                          422: unprocessable(["unknown_journey", "journey_not_live",
                                              "invalid_recipient", "too_many_recipients"],
                                             "Nothing was enrolled; `row` is the index.")})
class EnrollView(APIView):
    """Enroll one or up to 10,000 recipients in a live journey, idempotent by recipient id.

    The id is hashed (the same keyed pseudonym as everywhere) and never stored; the answer
    gives each row's pseudonym, which the due queue names the person by. All or nothing."""

    def post(self, request):
        body = EnrollRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        journey = _journey(request.user, body.validated_data["journey"])
        if lifecycle.state_of(journey) not in (ReleaseState.LIVE, ReleaseState.PAUSED):
            raise Unprocessable([error("journey_not_live", f"Journey {journey.slug!r} is not "
                                       "live: put it live before enrolling.")])
        markets = set(journey.jurisdictions.values_list("code", flat=True))
        try:
            items, problems = enrollment.clean(body.validated_data["recipients"],
                                               markets=markets, channels=set(channel_codes()))
        except enrollment.EnrollmentError as exc:
            raise Unprocessable([error(exc.code, exc.message)])
        if problems:
            raise Unprocessable([p.as_dict() for p in problems[:100]])
        for market in {i["market"] for i in items}:
            ensure_in_scope(request.user, jurisdiction=market)
        with history_as_system(request):
            done = {e.pseudonym: e for e in enrollment.enroll(journey, items, now=timezone.now())}
        if any(e.created for e in done.values()):  # plan their first touchpoint at once
            transaction.on_commit(tasks.schedule_now.delay)
        rows = []
        for row, item in enumerate(items):
            pseudonym = pseudonymous_id(item["id"])
            rows.append({"row": row, "pseudonym": pseudonym, "created": done[pseudonym].created,
                         "step": done[pseudonym].step})
        created = sum(e.created for e in done.values())
        return Response(EnrollResponseSerializer({
            "journey": journey.slug, "created": created,
            "already_enrolled": len(done) - created, "recipients": rows}).data)


@extend_schema(
    tags=["orchestration"],
    parameters=[
        OpenApiParameter("channel", str, required=True, description="Channel code, e.g. email"),
        OpenApiParameter("limit", int, description="At most 500 (default 100)"),
        OpenApiParameter("lease_seconds", int, description="Lease length, 30–3600 (default 300)"),
        OpenApiParameter("assemble", bool, description="Return each assembled message too"),
    ],
    responses={200: LeaseResponseSerializer,
               400: error_response("Bad parameters.", ["channel_required", "invalid_limit"]),
               403: error_response("Not a channel token, or the channel is outside its scope.",
                                   ["channel_token_required", "channel_out_of_scope"]),
               422: unprocessable(list(ERROR_CODES), "Per item in `errors`: why the content "
                                  "was refused at lease (the item is then not leased).")},
    callbacks=[OpenApiCallback(
        name, "{$subscription.url}",
        extend_schema(summary=summary, request=PushSerializer, responses={
            200: OpenApiResponse(description="Any 2xx: received (then acknowledge each "
                                             "item through its ack_url)"),
            500: OpenApiResponse(description="Any other status or no answer: sent again "
                                             "with exponential backoff while the leases "
                                             "hold")}))
        for name, summary in (
            ("touchpoint.due", "Due touchpoints of your token's channels, leased to it"),
            ("rep_task.created", "Rep tasks (channel rep) for the CRM, leased to it"))])
class DueQueueView(APIView):
    """Lease due touchpoints of a channel in your token's markets, oldest first.

    Acknowledge each with POST …/ack/ before `lease_expires_at`, or it returns to the
    queue. Touchpoints whose content is no longer compliant (withdrawn, expired…) are
    refused at lease time and never handed out.

    Push instead of polling: register a webhook (POST /api/v1/webhooks/) with events
    `touchpoint.due` (your token's channels) and/or `rep_task.created` (channel `rep`).
    The beat then leases what is due to your token and POSTs it (the callbacks below),
    signed, retried with backoff on a non-2xx; acknowledge each item here as when
    polling. A push not delivered before its leases run out is not sent: the touchpoints
    return to the queue and are pushed again."""

    def get(self, request):
        token_id = _token_id(request)
        channel = request.query_params.get("channel", "")
        if not channel:
            raise exceptions.ValidationError({"channel": [exceptions.ErrorDetail(
                "Say which channel's touchpoints you take: ?channel=email.",
                code="channel_required")]})
        ensure_in_scope(request.user, channel=channel)
        try:
            limit = int(request.query_params.get("limit", 100))
            seconds = int(request.query_params.get("lease_seconds", due_queue.LEASE_SECONDS))
            if not (1 <= limit <= due_queue.MAX_LIMIT and 30 <= seconds <= 3600):
                raise ValueError
        except ValueError:
            raise exceptions.ValidationError({"limit": [exceptions.ErrorDetail(
                f"limit is 1–{due_queue.MAX_LIMIT}, lease_seconds 30–3600.",
                code="invalid_limit")]})
        now = timezone.now()
        with history_as_system(request):
            items = due_queue.lease(token_id=token_id, channel=channel,
                                    markets=request.user.jurisdictions, limit=limit, now=now,
                                    lease_seconds=seconds)
            if request.query_params.get("assemble", "").lower() in ("1", "true", "yes"):
                due_queue.assemble(items, token_id=token_id, now=now)
        out = [leased_item(item) for item in items if item.touchpoint.status == "leased"]
        return Response({"channel": channel, "items": out})


@extend_schema(tags=["orchestration"], request=AckRequestSerializer,
               responses={200: TouchpointSerializer,
                          404: error_response("Not leased to this token.", ["unknown_touchpoint"]),
                          409: error_response("No longer leased.", ["not_leased"])})
class AckView(APIView):
    """Acknowledge a leased touchpoint: delivered or failed moves the person on to the next
    step (the next delay counts from now); retry puts it back in the queue."""

    def post(self, request, pk: int):
        token_id = _token_id(request)
        body = AckRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            with history_as_system(request):
                tp = due_queue.ack(pk, token_id=token_id, now=timezone.now(),
                                   **body.validated_data)
        except due_queue.QueueError as exc:
            if exc.status == 404:
                raise exceptions.NotFound(exc.message, code=exc.code)
            raise Conflict(exc.message, code=exc.code)
        return Response(TouchpointSerializer(tp).data)


@extend_schema(tags=["orchestration"], request=SignalRequestSerializer,
               responses={200: SignalResponseSerializer,
                          422: unprocessable(["unknown_journey"])})
class SignalView(APIView):
    """An outside signal (e.g. `guideline-published`): every active signal rule of that
    name moves its matching enrolled recipients (optionally narrowed by attributes and
    to one journey); each move records the rule that fired."""

    def post(self, request):
        body = SignalRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        action = "view" if isinstance(request.user, ChannelClient) else "change"
        visible = Journey.objects.restrict(request.user, action)
        if data.get("journey"):
            visible = visible.filter(pk=_journey(request.user, data["journey"]).pk)
        with history_as_system(request):
            signal = triggers.receive_signal(
                data["signal"], data["attributes"], now=timezone.now(),
                token_id=getattr(request.user, "token_id", None),
                journey_ids=list(visible.values_list("pk", flat=True)))
        return Response(SignalResponseSerializer(signal).data)
