"""Delivery API: single and batch assembly, engagement events, webhook subscriptions, and
where-used (which counts deliveries). Every assembly goes through `delivery.serving`."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from cms.api.auth import (
    ChannelClient,
    ensure_in_scope,
    history_as_system,
    owner_key,
    people_only,
)
from cms.api.errors import RequestTooLarge, Unprocessable, error
from cms.api.parsers import GuardedJSONParser
from cms.api.schema import unprocessable
from cms.lru import LRUCache
from content.api.views import module_or_404
from content.models import ModuleVersion
from journeys.api.recipients import RecipientSerializer
from journeys.assembly import ERROR_CODES
from journeys.models import Journey, Step
from journeys.recipients import channel_codes, clean_recipient

from .. import batch, usage, webhooks
from ..models import AssemblyJob, AssemblyJobResult, ChannelToken, JobStatus, WebhookSubscription
from ..output import assembly_output
from ..serving import Caller, serve_one
from .serializers import (
    AssembleRequestSerializer,
    AssemblyOutputSerializer,
    BatchCsvRequestSerializer,
    BatchRequestSerializer,
    JobResultSerializer,
    JobSerializer,
    UnusedVersionSerializer,
    UsageSerializer,
    WebhookCreatedSerializer,
    WebhookCreateSerializer,
    WebhookSerializer,
)


def _step_or_422(user, journey_slug: str, step_key: str) -> Step:
    journey = Journey.objects.restrict(user, "view").filter(slug=journey_slug).first()
    if journey is None:
        raise Unprocessable([error("unknown_journey", f"No journey {journey_slug!r} you may use.")])
    step = Step.objects.select_related("journey", "channel").filter(
        journey=journey, key=step_key).first()
    if step is None:
        raise Unprocessable([error("unknown_step",
                                   f"Journey {journey_slug!r} has no step {step_key!r}.")])
    return step


# --- single assembly ------------------------------------------------------------------------

# Steps a channel token may use, by (its scope, journey, step, catalog epoch): the scope
# and every journey or step change move the epoch, read once per request by the token
# lookup. People's permissions do not move it: their steps are always looked up.
VISIBLE_STEPS = LRUCache(4_096, name="delivery.visible_steps")


CHANNEL_CODES = LRUCache(8, name="delivery.channel_codes")  # by catalog epoch


def _serializer_context(epoch: int | None) -> dict:
    """The taxonomy's channel codes (consent may name only these) for the recipient
    serializer, cached by the request's catalog epoch when the caller read one."""
    if epoch is None:
        return {}
    codes = CHANNEL_CODES.get(epoch)
    if codes is None:
        codes = channel_codes()
        CHANNEL_CODES.put(epoch, codes)
    return {"channels": codes}


def _visible_step(user, slug: str, key: str) -> Step:
    cache_key = None
    if isinstance(user, ChannelClient) and user.epoch is not None:
        cache_key = (user.channels, user.jurisdictions, slug, key, user.epoch)
        step = VISIBLE_STEPS.get(cache_key)
        if step is not None:
            return step
    step = get_object_or_404(Step.objects.restrict(user, "view"), journey__slug=slug, key=key)
    if cache_key is not None:
        VISIBLE_STEPS.put(cache_key, step)
    return step


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
        epoch = getattr(request.user, "epoch", None)
        body = assemble_input(request.data, _serializer_context(epoch))
        ensure_in_scope(request.user, channel=body["channel"], jurisdiction=body["jurisdiction"])
        step = _visible_step(request.user, slug, key)
        with history_as_system(request):  # serving may update the recipient's enrollment
            result = serve_one(step, body["recipient"], channel=body["channel"],
                               jurisdiction=body["jurisdiction"].upper(), locale=body["locale"],
                               caller=Caller.of(request.user), epoch=epoch)
        if not result.ok:
            raise Unprocessable([e.as_dict() for e in result.errors])
        return Response(assembly_output(result), status=status.HTTP_200_OK)


# The request body's plain fields and their lengths, from the serializer (the schema).
_CODES = {name: (field.min_length or 1, field.max_length)
          for name, field in AssembleRequestSerializer._declared_fields.items()
          if name in ("channel", "jurisdiction", "locale")}


def assemble_input(data, context: dict) -> dict:
    """The assemble request's validated body: AssembleRequestSerializer's validated_data.

    The usual body — channel, jurisdiction, locale and a good recipient, nothing else, with
    the taxonomy's channel codes known — is checked directly (the same length rules, the
    same whitespace trimming, the recipient by the same `journeys.recipients` parser);
    anything else (an error, an odd value, a top-level unsubscribe_url) goes through the
    serializer, which answers with the DESIGN.md codes as always. Building DRF's fields for
    every request cost more than the rest of the validation
    (tests/api/test_assemble_input.py: both give the same data)."""
    plain = _plain_input(data, context.get("channels"))
    if plain is not None:
        return plain
    serializer = AssembleRequestSerializer(data=data, context=context)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _plain_input(data, channels) -> dict | None:
    if channels is None or type(data) is not dict or data.keys() != _PLAIN_KEYS:
        return None
    body = {}
    for name, (shortest, longest) in _CODES.items():
        value = data[name]
        # Printable ASCII only here (no NUL or surrogate for DRF to refuse), trimmed as DRF.
        if type(value) is not str or not (value.isascii() and value.isprintable()):
            return None
        value = value.strip()
        if not shortest <= len(value) <= longest:
            return None
        body[name] = value
    if type(data["recipient"]) is not dict:
        return None
    recipient, problems = clean_recipient(data["recipient"], channels=frozenset(channels))
    if problems:
        return None
    body["recipient"] = recipient
    return body


_PLAIN_KEYS = {"channel", "jurisdiction", "locale", "recipient"}



# --- batch assembly ------------------------------------------------------------------------

def job_body(request, job: AssemblyJob) -> dict:
    """The job rendered by JobSerializer (its counts and links come from batch)."""
    figures = batch.counts(job)
    return JobSerializer({
        "id": str(job.pk), "status": job.status, "journey": job.journey_slug,
        "step": job.step_key, "channel": job.channel, "jurisdiction": job.jurisdiction,
        "locale": job.locale, "total": job.total, **figures,
        "created_at": job.created_at, "finished_at": job.finished_at,
        "expires_at": batch.expires_at(job),
        "results": request.build_absolute_uri(
            reverse("api-assembly-results", kwargs={"job_id": job.pk})),
    }).data


BATCH_422 = ["too_many_recipients", "unknown_journey", "unknown_step", "idempotency_key_reused"]


@extend_schema(
    tags=["assembly"],
    parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER,
                                 description="Retrying a POST with the same key returns the "
                                             "same job")],
    request={"application/json": BatchRequestSerializer,
             "multipart/form-data": BatchCsvRequestSerializer},
    responses={
        202: JobSerializer,
        422: unprocessable(BATCH_422, "The batch was refused as a whole; no job was created."),
    },
)
class AssemblyJobCreateView(APIView):
    """Start a batch: one step for up to 10,000 recipients (JSON list or CSV upload).

    Answers 202 with the job; poll `GET /api/v1/assemblies/{id}/`. In a CSV a bad row is
    refused on its own (its row number is in the results) and the rest are assembled."""

    parser_classes = [GuardedJSONParser, MultiPartParser]

    def post(self, request):
        key = request.headers.get("Idempotency-Key") or None
        if key is not None and not (0 < len(key) <= 200 and key.isascii()):
            raise exceptions.ValidationError(
                {"Idempotency-Key": [exceptions.ErrorDetail("Use up to 200 ASCII characters.",
                                                            code="invalid")]})
        if request.content_type.startswith("multipart/"):
            params, recipients, input_errors = self._from_csv(request)
        else:
            params, recipients, input_errors = self._from_json(request)
        ensure_in_scope(request.user, channel=params["channel"],
                        jurisdiction=params["jurisdiction"])
        step = _step_or_422(request.user, params["journey"], params["step"])
        try:
            job, created = batch.create_job(
                batch.JobRequest(step=step, channel=params["channel"],
                                 jurisdiction=params["jurisdiction"].upper(),
                                 locale=params["locale"], recipients=recipients,
                                 input_errors=input_errors),
                user=request.user, owner_key=owner_key(request.user), idempotency_key=key)
        except batch.BatchError as exc:
            raise _batch_exception(exc)
        job.refresh_from_db()
        response = Response(job_body(request, job), status=status.HTTP_202_ACCEPTED)
        response["Location"] = reverse("api-assembly-detail", kwargs={"job_id": job.pk})
        if not created:
            response["Idempotent-Replayed"] = "true"
        return response

    def _from_json(self, request):
        data = request.data
        if isinstance(data, dict) and isinstance(data.get("recipients"), list):
            try:
                batch.check_count(len(data["recipients"]))
            except batch.BatchError as exc:
                raise _batch_exception(exc)
        body = BatchRequestSerializer(data=data)
        body.is_valid(raise_exception=True)
        recipients = RecipientSerializer(data=body.validated_data["recipients"], many=True)
        if not recipients.is_valid():
            raise exceptions.ValidationError({"recipients": recipients.errors})
        params = {k: v for k, v in body.validated_data.items() if k != "recipients"}
        return params, [dict(r) for r in recipients.validated_data], {}

    def _from_csv(self, request):
        body = BatchCsvRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        upload = body.validated_data["recipients"]
        if upload.size > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise RequestTooLarge(f"The CSV is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} "
                                  "bytes; split it into several jobs.")
        params = {k: v for k, v in body.validated_data.items() if k != "recipients"}
        try:
            recipients, errors = batch.parse_recipient_file(
                upload.read(), format=batch.upload_format(upload.name, upload.content_type))
        except batch.BatchError as exc:
            raise _batch_exception(exc)
        return params, recipients, errors


def _batch_exception(exc: batch.BatchError) -> exceptions.APIException:
    if exc.status == 422:
        return Unprocessable([error(exc.code, exc.detail, **exc.extra)])
    return exceptions.ValidationError({"recipients": [exceptions.ErrorDetail(exc.detail,
                                                                             code=exc.code)]})


def _job_or_404(request, job_id) -> AssemblyJob:
    return get_object_or_404(AssemblyJob, pk=job_id, owner_key=owner_key(request.user))


@extend_schema(tags=["assembly"], responses={200: JobSerializer, 204: None})
class AssemblyJobDetailView(APIView):
    """A batch job's status and counts (done = assembled + failed); DELETE purges its
    recipients and results at once."""

    def get(self, request, job_id):
        return Response(job_body(request, _job_or_404(request, job_id)))

    def delete(self, request, job_id):
        batch.purge(_job_or_404(request, job_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["assembly"])
class AssemblyJobResultsView(generics.ListAPIView):
    """Per-recipient results in submission order: content and manifest, or refusal codes.
    Reading the last page of a finished job marks its results fetched; they are then
    purged (with the recipients) by the next purge run."""

    serializer_class = JobResultSerializer
    filter_backends: list = []

    def get_queryset(self):
        return AssemblyJobResult.objects.none()

    def list(self, request, *args, **kwargs):
        job = _job_or_404(request, kwargs["job_id"])
        results = (AssemblyJobResult.objects.filter(job=job).order_by("index")
                   .values("index", "ok", "subject", "html", "text", "manifest", "errors"))
        page = self.paginate_queryset(results)
        response = self.get_paginated_response(JobResultSerializer(page, many=True).data)
        if job.status == JobStatus.DONE and response.data.get("next") is None:
            batch.mark_fetched(job)
        return response


# --- engagement events: delivery/api/events.py ------------------------------------------

# --- webhooks ----------------------------------------------------------------------------------

def _token_or_403(request) -> ChannelToken:
    if not isinstance(request.user, ChannelClient):
        raise exceptions.PermissionDenied(
            "Webhooks belong to a channel token; call with Authorization: Token <key> "
            "(people manage them in the admin).", code="channel_token_required")
    return ChannelToken.objects.get(pk=request.user.token_id)


@extend_schema(tags=["webhooks"])
class WebhookListView(generics.ListAPIView):
    """Your token's webhook subscriptions; POST registers one (its secret is shown once).

    Notifications are POSTed as JSON: `version.withdrawn` and `version.expired` to every
    subscription, `touchpoint.due` and `rep_task.created` only to those that name them. Each
    carries `X-Tessera-Event`, `X-Tessera-Timestamp` and `X-Tessera-Signature:
    sha256=HMAC(secret, timestamp + "." + body)`, and is retried with exponential backoff
    until a 2xx, at most `TESSERA_WEBHOOK_MAX_ATTEMPTS` times (then marked failed); a pushed
    lease that has run out meanwhile is dropped unsent. Listed newest first, paginated."""

    serializer_class = WebhookSerializer
    filter_backends: list = []

    def get_queryset(self):
        return WebhookSubscription.objects.none()

    def list(self, request, *args, **kwargs):
        token = _token_or_403(request)
        page = self.paginate_queryset(WebhookSubscription.objects.filter(token=token)
                                      .order_by("-created_at"))
        return self.get_paginated_response(WebhookSerializer(page, many=True).data)

    @extend_schema(request=WebhookCreateSerializer,
                   responses={201: WebhookCreatedSerializer,
                              400: OpenApiResponse(description="Invalid url or events")})
    def post(self, request):
        token = _token_or_403(request)
        body = WebhookCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            subscription = webhooks.subscribe(token=token, url=body.validated_data["url"],
                                              events=body.validated_data.get("events"))
        except DjangoValidationError as exc:
            raise exceptions.ValidationError(exc.message_dict)
        return Response(WebhookCreatedSerializer(subscription).data,
                        status=status.HTTP_201_CREATED)


@extend_schema(tags=["webhooks"], responses={200: WebhookSerializer, 204: None})
class WebhookDetailView(APIView):
    """One subscription of your token; DELETE removes it."""

    def get(self, request, pk: int):
        token = _token_or_403(request)
        return Response(WebhookSerializer(
            get_object_or_404(WebhookSubscription, pk=pk, token=token)).data)

    def delete(self, request, pk: int):
        token = _token_or_403(request)
        get_object_or_404(WebhookSubscription, pk=pk, token=token).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- where-used ----------------------------------------------------------------------------

@extend_schema(tags=["modules"], responses=UsageSerializer)
class ModuleVersionUsageView(APIView):
    """Where-used for a version: the journeys and steps that use it and the deliveries it
    went out in, counted per channel and jurisdiction (people only)."""

    def get(self, request, code: str, number: int):
        people_only(request.user)
        module = module_or_404(request, code)
        version = get_object_or_404(ModuleVersion.objects.select_related("module"),
                                    module=module, number=number)
        return Response(UsageSerializer(usage.usage(version)).data)


@extend_schema(tags=["modules"])
class UnusedModulesView(generics.ListAPIView):
    """Approved versions of your brands that no journey binds and nothing has delivered:
    candidates not to re-certify (people only)."""

    serializer_class = UnusedVersionSerializer
    filter_backends: list = []

    def get_queryset(self):
        people_only(self.request.user)
        return usage.unused_approved_versions(
            ModuleVersion.objects.restrict(self.request.user, "view"))
