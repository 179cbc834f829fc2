"""Journeys that run: what the scheduler, the due queue, triggers and rep tasks keep.

Nothing here holds recipient personal data: an enrollment is the journeys app's keyed hash
of the channel's recipient id, and its profile keeps only the attributes a journey may
branch on (audience, specialty, market, locale, channel preferences, consent flags).
Every decision the scheduler or a trigger takes is written down with its reason.
"""

from __future__ import annotations

from django.db import models


class ReleaseState(models.TextChoices):
    DRAFT = "draft", "Draft"
    LIVE = "live", "Live"
    PAUSED = "paused", "Paused"
    RETIRED = "retired", "Retired"


class JourneyRelease(models.Model):
    """One version of a journey as it runs: a snapshot of its steps and transitions, and
    its lifecycle (draft → live → paused → retired). At most one release of a journey is
    live or paused; editing a live journey publishes a new release (`lifecycle.publish`)
    and moves enrolled recipients by the explicit `migration` rule (old step key → new)."""

    journey = models.ForeignKey("journeys.Journey", on_delete=models.CASCADE,
                                related_name="releases")
    number = models.PositiveIntegerField()
    state = models.CharField(max_length=10, choices=ReleaseState.choices,
                             default=ReleaseState.DRAFT)
    snapshot = models.JSONField(default=dict, blank=True)
    migration = models.JSONField(default=dict, blank=True,
                                 help_text="Step key of the previous release → step key here")
    created_at = models.DateTimeField(auto_now_add=True)
    live_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["journey", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["journey", "number"], name="release_number_unique"),
            models.UniqueConstraint(fields=["journey"], name="one_running_release_per_journey",
                                    condition=models.Q(state__in=["live", "paused"])),
        ]

    def __str__(self) -> str:
        return f"{self.journey_id} r{self.number} ({self.state})"


class ProfileStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"


class EnrollmentProfile(models.Model):
    """The scheduler's view of one enrollment (journeys.Enrollment) and the attributes a
    journey may branch on — the documented minimum, never a name or contact detail."""

    enrollment = models.OneToOneField("journeys.Enrollment", on_delete=models.CASCADE,
                                      related_name="profile")
    # Copied from the enrollment so the scheduler's touchpoints need no join. Not indexed:
    # nothing looks a profile up by it, and two indexes of random 64-character keys (the
    # B-tree and its LIKE twin) cost every scheduler update of the profile.
    recipient_hash = models.CharField(max_length=64)
    journey = models.ForeignKey("journeys.Journey", on_delete=models.CASCADE,
                                related_name="+")
    audience = models.CharField(max_length=40, blank=True)
    specialty = models.CharField(max_length=100, blank=True)
    market = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2")
    locale = models.CharField(max_length=20, blank=True)
    channel_preferences = models.JSONField(default=list, blank=True,
                                           help_text="Channel codes the person prefers; empty = any")
    consent = models.JSONField(default=dict, blank=True, help_text="{channel: true/false}")
    status = models.CharField(max_length=10, choices=ProfileStatus.choices,
                              default=ProfileStatus.ACTIVE)
    # The step the scheduler last planned for; differs from enrollment.current_step when an
    # event or a trigger moved the person (their delay then counts from the move).
    planned_step = models.ForeignKey("journeys.Step", null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    step_entered_at = models.DateTimeField()
    last_touch_at = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True,
                                         help_text="When the scheduler looks at it again")
    reason = models.CharField(max_length=300, blank=True, help_text="The last decision, explained")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["status", "next_check_at"], name="profile_due_idx")]

    def __str__(self) -> str:
        return f"profile of enrollment {self.enrollment_id}"


class TouchpointStatus(models.TextChoices):
    DUE = "due", "Due"
    LEASED = "leased", "Leased to a channel"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    REFUSED = "refused", "Refused (not compliant at lease time)"
    SKIPPED = "skipped", "Skipped (consent or preference)"
    STOPPED = "stopped", "Stopped (paused or migrated)"


OPEN_STATUSES = (TouchpointStatus.DUE, TouchpointStatus.LEASED)
# What counts against a frequency cap: everything planned to go out or gone out.
CAPPED_STATUSES = (TouchpointStatus.DUE, TouchpointStatus.LEASED, TouchpointStatus.DELIVERED)


class DueTouchpoint(models.Model):
    """One touchpoint for one recipient, created once per recipient × step (database
    constraint), leased by a channel token and acknowledged with the delivery result."""

    # No index of its own: touchpoint_once_per_step (enrollment, step) serves lookups by
    # enrollment, and the scheduler inserts one touchpoint per due profile.
    enrollment = models.ForeignKey("journeys.Enrollment", on_delete=models.CASCADE,
                                   related_name="touchpoints", db_index=False)
    step = models.ForeignKey("journeys.Step", on_delete=models.CASCADE, related_name="+")
    recipient_hash = models.CharField(max_length=64)
    brand_id = models.IntegerField()
    channel = models.CharField(max_length=40)
    purpose = models.CharField(max_length=20)
    market = models.CharField(max_length=2, blank=True)
    locale = models.CharField(max_length=20, blank=True)
    due_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=TouchpointStatus.choices,
                              default=TouchpointStatus.DUE)
    reason = models.CharField(max_length=300, blank=True)
    lease_token_id = models.IntegerField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    leases = models.PositiveSmallIntegerField(default=0)
    result = models.JSONField(null=True, blank=True, help_text="What the channel acknowledged")
    errors = models.JSONField(default=list, blank=True, help_text="Refusal codes at lease time")
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["enrollment", "step"], name="touchpoint_once_per_step"),
        ]
        indexes = [
            models.Index(fields=["channel", "status", "due_at"], name="touchpoint_queue_idx"),
            models.Index(fields=["recipient_hash", "channel", "due_at"], name="touchpoint_cap_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} touchpoint {self.pk} ({self.status})"


class SendWindow(models.Model):
    """When a market may be contacted: local hours on allowed weekdays (outside = quiet)."""

    market = models.CharField(max_length=2, unique=True, help_text="ISO 3166-1 alpha-2")
    time_zone = models.CharField(max_length=60, help_text="IANA name, e.g. Europe/Berlin")
    start_hour = models.PositiveSmallIntegerField(default=9)
    end_hour = models.PositiveSmallIntegerField(default=17, help_text="Exclusive")
    weekdays = models.JSONField(default=list, help_text="0 = Monday … 6 = Sunday")

    def __str__(self) -> str:
        return f"{self.market} {self.start_hour}-{self.end_hour} {self.time_zone}"


class FrequencyCap(models.Model):
    """At most `max_count` touchpoints on `channel` (of `purpose`, blank = any) per recipient
    in `period_days`, across all journeys of `brand` (blank = every brand)."""

    brand = models.ForeignKey("content.Brand", null=True, blank=True, on_delete=models.CASCADE,
                              related_name="+")
    channel = models.CharField(max_length=40)
    purpose = models.CharField(max_length=20, blank=True)
    max_count = models.PositiveSmallIntegerField()
    period_days = models.PositiveSmallIntegerField()

    def __str__(self) -> str:
        what = f"{self.purpose} " if self.purpose else ""
        return f"≤ {self.max_count} {what}{self.channel} / {self.period_days} days"


class TriggerKind(models.TextChoices):
    PATTERN = "pattern", "Event pattern across channels"
    ATTRIBUTE = "attribute", "Attribute condition"
    TIME = "time", "Time at the step"
    SIGNAL = "signal", "Outside signal"


class TriggerRule(models.Model):
    """When to move recipients: an event pattern, attributes, time, or an outside signal.

    The move is a journeys.Transition's (its from-step, to-step or pause) or, for signals
    addressing a whole stage, `stage` → `to_step`. `conditions` (see triggers.py):
    {"within_days": 14, "events": [{"event": "ignored", "channel": "email", "min": 2}],
     "absent": [{"channel": "portal"}], "attributes": {"specialty": "cardiology"},
     "after_days": 10}."""

    journey = models.ForeignKey("journeys.Journey", on_delete=models.CASCADE,
                                related_name="trigger_rules")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=10, choices=TriggerKind.choices)
    transition = models.ForeignKey("journeys.Transition", null=True, blank=True,
                                   on_delete=models.CASCADE, related_name="trigger_rules")
    stage = models.ForeignKey("journeys.Stage", null=True, blank=True, on_delete=models.CASCADE,
                              related_name="+", help_text="Signals: everyone in this stage")
    to_step = models.ForeignKey("journeys.Step", null=True, blank=True,
                                on_delete=models.CASCADE, related_name="+")
    signal = models.SlugField(max_length=80, blank=True)
    conditions = models.JSONField(default=dict, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["journey", "id"]

    def __str__(self) -> str:
        return self.name


class Move(models.Model):
    """Every move a trigger, a signal, silence or a migration made, with its reason."""

    enrollment = models.ForeignKey("journeys.Enrollment", on_delete=models.CASCADE,
                                   related_name="moves")
    from_step = models.ForeignKey("journeys.Step", null=True, on_delete=models.SET_NULL,
                                  related_name="+")
    to_step = models.ForeignKey("journeys.Step", null=True, on_delete=models.SET_NULL,
                                related_name="+")
    paused = models.BooleanField(default=False)
    rule = models.ForeignKey(TriggerRule, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="moves")
    reason = models.CharField(max_length=300)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"move of enrollment {self.enrollment_id}: {self.reason}"


class Signal(models.Model):
    """An outside signal (e.g. `guideline-published`) and how many recipients it moved."""

    name = models.SlugField(max_length=80)
    attributes = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField()
    token_id = models.IntegerField(null=True, blank=True)
    moved = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"signal {self.name} ({self.moved} moved)"


class RepTask(models.Model):
    """A follow-up for a field rep (CRM): the approved rep-facing module to use and an
    aggregate engagement summary — topics engaged, last touch; no personal data."""

    touchpoint = models.OneToOneField(DueTouchpoint, on_delete=models.CASCADE,
                                      related_name="rep_task")
    module_code = models.CharField(max_length=40, blank=True)
    module_version = models.PositiveIntegerField(null=True, blank=True)
    summary = models.JSONField(default=dict)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"rep task for touchpoint {self.touchpoint_id}"
