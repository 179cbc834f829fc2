"""Customer journeys: stages, touchpoints (steps), slots, adaptive transitions, enrollments.

A journey is drawn the way people draw it on a whiteboard: stages of one audience as
columns, touchpoints inside them, each touchpoint filled by ordered slots of approved
content. Engagement events move a pseudonymous recipient between touchpoints.

Recipient personal data never reaches these tables: an enrollment holds only a keyed hash
(HMAC-SHA256) of the channel's recipient id.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from simple_history.models import HistoricalRecords

from content.models import ModuleKind, Purpose


class OwnerFunction(models.TextChoices):
    MARKETING = "marketing", "Marketing"
    SALES = "sales", "Sales"
    MEDICAL_AFFAIRS = "medical_affairs", "Medical affairs"
    MARKET_ACCESS = "market_access", "Market access"
    PATIENT_SUPPORT = "patient_support", "Patient support"


class Layout(models.TextChoices):
    EMAIL = "email", "Email"
    PORTAL = "portal", "Portal page"


class EventType(models.TextChoices):
    OPENED = "opened", "Opened"
    CLICKED = "clicked", "Clicked"
    DOWNLOADED = "downloaded", "Downloaded"
    IGNORED = "ignored", "Ignored"
    DECLINED = "declined", "Declined"
    ATTENDED = "attended", "Attended"
    NO_ENGAGEMENT_FOR = "no_engagement_for", "No engagement for N days"


class Versioned(models.Model):
    """An edit counter for optimistic locking: every save adds one, whoever saves (admin,
    builder, API, script). An editor keeps the number it read and `journeys.builder.services`
    refuses a save whose number is no longer current (`EditConflict`)."""

    version = models.PositiveIntegerField(default=0, editable=False,
                                          help_text="Edit counter (optimistic locking)")

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        self.version = (self.version or 0) + 1
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "version"}
        super().save(*args, **kwargs)


class JourneyQuerySet(models.QuerySet):
    """`restrict(user_or_client, action)` for journeys and the rows inside them.

    People follow the brand rule of `content.permissions` (authors their brands, reviewers
    and superusers all); a channel caller views the journeys running in one of its
    jurisdictions (what it may assemble is checked per version by the deliverability rule)
    and changes none. The model names the lookup prefix to its journey in `journey_lookup`
    ("" for a journey, "journey__" for a step)."""

    def restrict(self, user_or_client, action: str = "view"):
        from content.permissions import VIEW, channel_scope, check_action, restrict_people

        check_action(action)
        prefix = self.model.journey_lookup
        scope = channel_scope(user_or_client)
        if scope is None:
            return restrict_people(self, user_or_client, action, f"{prefix}brand")
        if action != VIEW:
            return self.none()
        through = Journey.jurisdictions.through
        in_scope = through.objects.filter(jurisdiction__code__in=scope.jurisdictions)
        return self.filter(**{f"{prefix}pk__in": in_scope.values("journey_id")})


class Journey(Versioned):
    """One brand's journey for one audience in one or more markets."""

    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    brand = models.ForeignKey("content.Brand", on_delete=models.PROTECT, related_name="journeys")
    audience = models.ForeignKey("content.Audience", on_delete=models.PROTECT, related_name="journeys")
    jurisdictions = models.ManyToManyField("content.Jurisdiction", related_name="journeys",
                                           help_text="Markets this journey runs in")
    locale = models.ForeignKey("content.Locale", on_delete=models.PROTECT, related_name="journeys",
                               help_text="Default locale of the journey's content")
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = JourneyQuerySet.as_manager()
    history = HistoricalRecords(m2m_fields=[jurisdictions])
    journey_lookup = ""

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Stage(Versioned):
    """A column of the journey map: one stage of the journey's audience, with its insights."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="stages")
    audience_stage = models.ForeignKey(
        "content.Stage", on_delete=models.PROTECT, related_name="journey_stages",
        help_text="The audience's stage this column stands for (same audience as the journey)",
    )
    order = models.PositiveSmallIntegerField(default=0)
    needs = models.TextField(blank=True)
    emotions = models.TextField(blank=True)
    pain_points = models.TextField(blank=True)
    opportunities = models.TextField(blank=True)

    objects = JourneyQuerySet.as_manager()
    history = HistoricalRecords()
    journey_lookup = "journey__"

    class Meta:
        ordering = ["journey", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["journey", "audience_stage"],
                                    name="journey_stage_once_per_journey"),
        ]

    def __str__(self) -> str:
        return self.audience_stage.name if self.audience_stage_id else f"Stage {self.order}"

    @property
    def name(self) -> str:
        return str(self)

    def clean(self):
        if self.journey_id and self.audience_stage_id:
            if self.audience_stage.audience_id != self.journey.audience_id:
                raise ValidationError({"audience_stage": (
                    f"{self.audience_stage} belongs to another audience; this journey is for "
                    f"{self.journey.audience}."
                )})


STEP_KEY_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")


class Step(Versioned):
    """A touchpoint: something specific and observable a person receives or does."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="steps")
    stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="steps")
    key = models.SlugField(max_length=60, help_text="Unique in its journey; used in URLs and the API")
    name = models.CharField(max_length=200)
    order = models.PositiveSmallIntegerField(default=0, help_text="Order inside its stage")
    channel = models.ForeignKey("content.Channel", on_delete=models.PROTECT, related_name="steps")
    owner_function = models.CharField(max_length=20, choices=OwnerFunction.choices,
                                      default=OwnerFunction.MARKETING)
    purpose = models.CharField(max_length=20, choices=Purpose.choices, default=Purpose.PROMOTIONAL)
    timing = models.CharField(max_length=200, blank=True,
                              help_text="In words, e.g. 'two days after the webinar'")
    delay_days = models.PositiveSmallIntegerField(default=0, help_text="Days after the previous step")
    decision_moment = models.CharField(max_length=300, blank=True,
                                       help_text="The decision this touchpoint serves")
    needs = models.TextField(blank=True)
    emotions = models.TextField(blank=True)
    pain_points = models.TextField(blank=True)
    opportunities = models.TextField(blank=True)
    layout = models.CharField(max_length=10, choices=Layout.choices, default=Layout.EMAIL)

    objects = JourneyQuerySet.as_manager()
    history = HistoricalRecords()
    journey_lookup = "journey__"

    class Meta:
        ordering = ["journey", "stage__order", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["journey", "key"], name="step_key_unique_per_journey"),
        ]

    def __str__(self) -> str:
        return f"{self.key}: {self.name}"

    def clean(self):
        if self.key and not STEP_KEY_RE.fullmatch(self.key):
            raise ValidationError({"key": "Use lower-case letters, digits, dashes or underscores."})
        if self.stage_id and self.journey_id and self.stage.journey_id != self.journey_id:
            raise ValidationError({"stage": "Pick a stage of this journey."})


class SelectorRanking(models.TextChoices):
    """How a selector slot orders the candidates that pass every rule."""

    DEFAULT = "default", "Recipient's specialty, then newest approval"
    ENGAGEMENT = "engagement", "Recipient's engagement with topics (next-best content)"


class Slot(models.Model):
    """A place for one module in a step: a fixed module, or a selector that picks one.

    A selector narrows the brand's approved modules by kind, stage and specialty tags;
    the assembly service picks, per recipient, the best candidate they have not seen.
    Selector slots with a higher priority choose first. With `ranking` "engagement" the
    candidates are ranked by the recipient's engagement with their topics first
    (`journeys.assembly.ranking`), and the manifest says why.
    """

    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="slots")
    order = models.PositiveSmallIntegerField(default=0)
    module = models.ForeignKey("content.ContentModule", on_delete=models.PROTECT, null=True,
                               blank=True, related_name="slots",
                               help_text="A fixed module; leave empty to use the selector")
    selector_kind = models.CharField(max_length=20, blank=True,
                                     choices=[("", "any kind"), *ModuleKind.choices],
                                     help_text="Selector: module kind")
    selector_stages = models.ManyToManyField("content.Stage", blank=True, related_name="+",
                                             help_text="Selector: tagged with any of these stages")
    selector_specialties = models.ManyToManyField(
        "content.Specialty", blank=True, related_name="+",
        help_text="Selector: tagged with any of these specialties (the recipient's first)",
    )
    priority = models.SmallIntegerField(default=0, help_text="Selector slots with higher priority pick first")
    required = models.BooleanField(default=True,
                                   help_text="Refuse the assembly when nothing fits; else leave it out")
    ranking = models.CharField(
        max_length=12, choices=SelectorRanking.choices, default=SelectorRanking.DEFAULT,
        help_text="Selector: how candidates that pass every rule are ordered. Engagement ranks "
                  "them by the stages and specialties of the content the recipient opened, "
                  "clicked or downloaded in this journey (ties: the default order); the "
                  "manifest says why")

    objects = JourneyQuerySet.as_manager()
    history = HistoricalRecords(m2m_fields=[selector_stages, selector_specialties])
    journey_lookup = "step__journey__"

    class Meta:
        ordering = ["step", "order", "id"]

    def __str__(self) -> str:
        if self.module_id:
            return f"#{self.order} {self.module.code}"
        return f"#{self.order} selector {self.selector_kind or 'any kind'}"

    @property
    def is_selector(self) -> bool:
        return self.module_id is None

    def clean(self):
        if self.module_id is None and not self.selector_kind:
            raise ValidationError("Bind the slot to a module or give the selector a module kind.")
        if self.module_id and self.selector_kind:
            raise ValidationError("A slot has either a module or a selector, not both.")
        if self.module_id and self.ranking != SelectorRanking.DEFAULT:
            raise ValidationError({"ranking": "Only a selector ranks candidates; a fixed slot "
                                              "always has its module."})
        self.check_brand()

    def check_brand(self) -> None:
        """A fixed slot binds a module of the journey's brand only: another brand's content
        (and its approvals, ISI, footer) has no place in this brand's touchpoints. Checked
        on every save too, so no form, API or script can bind one."""
        if not (self.module_id and self.step_id):
            return
        from content.models import ContentModule

        module_brand = ContentModule.objects.filter(pk=self.module_id).values_list(
            "brand_id", flat=True).first()
        journey_brand = Step.objects.filter(pk=self.step_id).values_list(
            "journey__brand_id", flat=True).first()
        if module_brand != journey_brand:
            raise ValidationError({"module": "Pick a module of the journey's brand."})

    def save(self, *args, **kwargs):
        self.check_brand()
        super().save(*args, **kwargs)


class Transition(models.Model):
    """Where engagement moves a person: after `threshold` events of a type at a step."""

    from_step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="transitions_out")
    event_type = models.CharField(max_length=20, choices=EventType.choices)
    threshold = models.PositiveSmallIntegerField(default=1, help_text="Events needed, e.g. 2 ignored emails")
    days = models.PositiveSmallIntegerField(null=True, blank=True,
                                            help_text="For 'no engagement for': days of silence")
    to_step = models.ForeignKey(Step, on_delete=models.CASCADE, null=True, blank=True,
                                related_name="transitions_in")
    pause = models.BooleanField(default=False, help_text="Pause outreach instead of moving")
    label = models.CharField(max_length=200, blank=True, help_text="Shown on the journey map")

    objects = JourneyQuerySet.as_manager()
    history = HistoricalRecords()
    journey_lookup = "from_step__journey__"

    class Meta:
        ordering = ["from_step", "event_type", "-threshold", "id"]

    def __str__(self) -> str:
        target = "pause" if self.pause else (self.to_step.key if self.to_step_id else "?")
        return f"{self.from_step.key} --{self.describe_event()}--> {target}"

    def describe_event(self) -> str:
        if self.event_type == EventType.NO_ENGAGEMENT_FOR:
            return f"no engagement for {self.days} days"
        label = EventType(self.event_type).label.lower() if self.event_type else "?"
        return label if self.threshold <= 1 else f"{label} ×{self.threshold}"

    def clean(self):
        errors = {}
        if self.pause == bool(self.to_step_id):
            errors["to_step"] = "Choose a step to move to, or tick pause (exactly one)."
        if self.to_step_id and self.from_step_id and self.to_step.journey_id != self.from_step.journey_id:
            errors["to_step"] = "The target step must belong to the same journey."
        if self.event_type == EventType.NO_ENGAGEMENT_FOR and not self.days:
            errors["days"] = "Say after how many days without engagement."
        if errors:
            raise ValidationError(errors)


def pseudonymous_id(recipient_id: str) -> str:
    """HMAC-SHA256 of a channel's recipient id under `TESSERA_PSEUDONYM_KEY` (else the
    SECRET_KEY): stable, and not reversible or recomputable without the key — a plain
    salted hash of a guessable id (an email, a customer number) could be brute-forced."""
    key = getattr(settings, "TESSERA_PSEUDONYM_KEY", "") or settings.SECRET_KEY
    return hmac.new(key.encode(), str(recipient_id).encode(), hashlib.sha256).hexdigest()


PSEUDONYM_RE = re.compile(r"^[0-9a-f]{64}$")


class Enrollment(models.Model):
    """A pseudonymous recipient's position in a journey."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="enrollments")
    recipient_hash = models.CharField(max_length=64, help_text="Salted sha256 of the recipient id")
    current_step = models.ForeignKey(Step, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="enrollments")
    paused = models.BooleanField(default=False)
    seen_module_ids = models.JSONField(default=list, blank=True,
                                       help_text="Modules already delivered (selectors do not repeat them)")
    enrolled_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = JourneyQuerySet.as_manager()
    history = HistoricalRecords()
    journey_lookup = "journey__"

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(fields=["journey", "recipient_hash"],
                                    name="enrollment_once_per_journey"),
        ]

    def __str__(self) -> str:
        return f"{self.journey.slug}/{self.recipient_hash[:12]}"

    def clean(self):
        if not PSEUDONYM_RE.fullmatch(self.recipient_hash or ""):
            raise ValidationError({"recipient_hash": "Store the 64-hex pseudonym, never a raw id."})


class EngagementEvent(models.Model):
    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="events")
    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="events")
    event_type = models.CharField(max_length=20, choices=EventType.choices)
    days = models.PositiveSmallIntegerField(null=True, blank=True)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)

    objects = JourneyQuerySet.as_manager()
    history = HistoricalRecords()
    journey_lookup = "enrollment__journey__"

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["enrollment", "step", "event_type"])]

    def __str__(self) -> str:
        return f"{self.event_type} at {self.step.key}"
