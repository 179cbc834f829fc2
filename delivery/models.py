"""Channel-facing records: tokens, batch assembly jobs, the delivery log and webhooks.

Nothing here holds recipient personal data for longer than a batch job needs it: the
delivery log keeps a keyed hash of the recipient id and the manifest (hashes, versions,
signatures), and a job's recipients and results are purged once fetched or expired.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from content.models import ModuleVersion


def _restrict_to_token(queryset, user_or_client, action: str, token_lookup: str):
    """Channel records: a channel caller sees (and changes) its own token's rows, a
    superuser all of them (the admin), anyone else none."""
    from content.permissions import channel_scope, check_action

    check_action(action)
    if channel_scope(user_or_client) is not None:
        return queryset.filter(**{token_lookup: user_or_client.token_id})
    if getattr(user_or_client, "is_superuser", False) and user_or_client.is_active:
        return queryset.all()
    return queryset.none()


class ChannelTokenQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)

    def restrict(self, user_or_client, action: str = "view"):
        return _restrict_to_token(self, user_or_client, action, "pk")


class AssemblyJobQuerySet(models.QuerySet):
    def restrict(self, user_or_client, action: str = "view"):
        """The jobs of whoever started them (`owner_key`: the token or the person), so an
        Idempotency-Key or a job id of someone else's finds nothing."""
        from cms.api.auth import owner_key
        from content.permissions import check_action

        check_action(action)
        if user_or_client is None or not getattr(user_or_client, "is_authenticated", False) \
                or not user_or_client.is_active:
            return self.none()
        return self.filter(owner_key=owner_key(user_or_client))


class WebhookSubscriptionQuerySet(models.QuerySet):
    def restrict(self, user_or_client, action: str = "view"):
        return _restrict_to_token(self, user_or_client, action, "token_id")


class ChannelToken(models.Model):
    """A machine credential for one channel integration (the email sender, the portal...).

    Only the sha256 of the key is stored; the key itself is shown once, at creation.
    The token may act only for its channels and jurisdictions.
    """

    name = models.CharField(max_length=120, help_text="Who uses it, e.g. 'Email sender EU'")
    key_prefix = models.CharField(
        max_length=8, editable=False, help_text="First characters of the key, to recognise it"
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    channels = models.ManyToManyField("content.Channel", related_name="tokens")
    jurisdictions = models.ManyToManyField("content.Jurisdiction", related_name="tokens")
    rate_limit = models.CharField(
        max_length=20, blank=True,
        help_text="Requests per period, e.g. 600/min or 50/s; empty = the site default",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )

    objects = ChannelTokenQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    PURGED = "purged", "Purged (results fetched or expired)"


class AssemblyJob(models.Model):
    """A batch assembly: one journey step for many recipients, run in Celery chunks."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    token = models.ForeignKey(
        ChannelToken, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )
    # Who may see the job and reuse an Idempotency-Key: "token:<id>" or "user:<id>".
    owner_key = models.CharField(max_length=40, editable=False)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    # sha256 of the request, so a reused Idempotency-Key with another body is refused.
    request_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    journey_slug = models.CharField(max_length=80)
    step_key = models.CharField(max_length=80)
    channel = models.CharField(max_length=40)
    jurisdiction = models.CharField(max_length=2)
    locale = models.CharField(max_length=20)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    total = models.PositiveIntegerField(default=0)
    chunk_size = models.PositiveIntegerField(default=200)
    # The recipients, kept only while the job runs (emptied when it finishes).
    recipients = models.JSONField(default=list, blank=True)
    # Recipients refused before assembly (e.g. a bad CSV row): index → errors.
    input_errors = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    results_fetched_at = models.DateTimeField(null=True, blank=True)
    purged_at = models.DateTimeField(null=True, blank=True)
    # When `requeue_stalled_chunks` last re-enqueued its unfinished chunks (a lost message
    # is re-sent once per stall period, not every beat tick while a worker is down).
    requeued_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = AssemblyJobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner_key", "idempotency_key"], name="job_idempotency_key_unique",
                condition=models.Q(idempotency_key__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"job {self.id} ({self.journey_slug}/{self.step_key}, {self.total})"


class AssemblyJobResult(models.Model):
    """The outcome for one recipient of a job; unique per (job, index) so re-runs skip it."""

    job = models.ForeignKey(AssemblyJob, on_delete=models.CASCADE, related_name="results")
    index = models.PositiveIntegerField()
    ok = models.BooleanField()
    subject = models.TextField(blank=True)
    html = models.TextField(blank=True)
    text = models.TextField(blank=True)
    manifest = models.JSONField(null=True, blank=True)
    errors = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "index"]
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="job_result_unique_index")
        ]

    def __str__(self) -> str:
        return f"{self.job_id} #{self.index}: {'ok' if self.ok else 'refused'}"


class Delivery(models.Model):
    """One assembled output served to a channel, recorded by its manifest only."""

    served_at = models.DateTimeField(default=timezone.now, db_index=True)
    channel = models.CharField(max_length=40)
    jurisdiction = models.CharField(max_length=2)
    locale = models.CharField(max_length=20)
    journey_slug = models.CharField(max_length=80)
    step_key = models.CharField(max_length=80)
    token = models.ForeignKey(
        ChannelToken, null=True, blank=True, on_delete=models.PROTECT, related_name="deliveries"
    )
    # Indexed only where set (Meta): a channel's deliveries have neither, and an index entry
    # for NULL would be written on every one of them.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+", db_index=False,
    )
    job = models.ForeignKey(
        AssemblyJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries",
        db_index=False,
    )
    recipient_pseudonym = models.CharField(
        max_length=64, help_text="Keyed hash of the channel's recipient id; never the id itself"
    )
    layout = models.CharField(max_length=120, blank=True)
    output_sha256 = models.CharField(max_length=64)
    manifest = models.JSONField()
    versions = models.ManyToManyField(
        "content.ModuleVersion", through="DeliveredVersion", related_name="deliveries"
    )

    class Meta:
        ordering = ["-served_at"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["user"], condition=models.Q(user__isnull=False),
                         name="delivery_user_set_idx"),
            models.Index(fields=["job"], condition=models.Q(job__isnull=False),
                         name="delivery_job_set_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.journey_slug}/{self.step_key} → {self.channel}/{self.jurisdiction} at {self.served_at:%Y-%m-%d %H:%M}"


class DeliveredVersion(models.Model):
    """Which module versions a delivery contained (the where-used index)."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE)
    # No index of its own: (version, channel, jurisdiction) below leads with it.
    version = models.ForeignKey("content.ModuleVersion", on_delete=models.PROTECT,
                                related_name="delivered_in", db_index=False)
    # Copied from the delivery so counts per channel/jurisdiction need no join.
    channel = models.CharField(max_length=40)
    jurisdiction = models.CharField(max_length=2)

    class Meta:
        indexes = [models.Index(fields=["version", "channel", "jurisdiction"])]

    def __str__(self) -> str:
        return f"{self.version_id} in delivery {self.delivery_id}"


class WebhookEvent(models.TextChoices):
    VERSION_WITHDRAWN = "version.withdrawn", "Module version withdrawn"
    VERSION_EXPIRED = "version.expired", "Module version expired"
    # Opt-in pushes of the due queue (orchestration.push): what is pushed is leased.
    TOUCHPOINT_DUE = "touchpoint.due", "Due touchpoints pushed to the channel (leased)"
    REP_TASK_CREATED = "rep_task.created", "Rep tasks pushed to the CRM (leased)"


def default_webhook_events() -> list[str]:
    return [WebhookEvent.VERSION_WITHDRAWN, WebhookEvent.VERSION_EXPIRED]


class WebhookSubscription(models.Model):
    """An endpoint a channel registered (with its token) to hear about withdrawals/expiry."""

    token = models.ForeignKey(ChannelToken, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    secret = models.CharField(
        max_length=64, editable=False,
        help_text="Shared secret for the HMAC-SHA256 signature (given to the channel once)",
    )
    events = models.JSONField(default=default_webhook_events)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = WebhookSubscriptionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.url} ({self.token.name})"

    def clean(self):
        # The admin validates through here; the API through webhooks.subscribe. One policy.
        from .webhooks import check_url

        super().clean()
        if self.url:
            check_url(self.url)


class WebhookDeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (retries exhausted)"


class WebhookDelivery(models.Model):
    """One notification to one subscription, with every attempt logged."""

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=40, choices=WebhookEvent.choices)
    event_id = models.UUIDField(default=uuid.uuid4, editable=False)
    payload = models.JSONField()
    status = models.CharField(
        max_length=10, choices=WebhookDeliveryStatus.choices, default=WebhookDeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(
        null=True, blank=True,
        help_text="Not sent after this (a push whose leases ran out: its touchpoints are back "
                  "in the queue and pushed again)")

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} → {self.subscription.url} ({self.status})"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE,
                                 related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error}"


class ModuleUsage(ModuleVersion):
    """Admin view of module versions with their where-used figures (no table of its own)."""

    class Meta:
        proxy = True
        verbose_name = "module usage"
        verbose_name_plural = "module usage (where used)"


class UnusedApprovedVersion(ModuleVersion):
    class Meta:
        proxy = True
        verbose_name = "unused approved version"
        verbose_name_plural = "unused approved versions (candidates not to re-certify)"
