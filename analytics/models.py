"""Measurement facts derived from the engagement events and the delivery log.

Dashboards read these tables, never raw events (docs/analytics.md):
- `DailyRollup`: counts per day × journey × stage × step × channel × market × module
  version. `module_version_id = 0` rows are the step totals (all content); rows with a
  version id count the deliveries that contained that version.
- `RecipientStep`: one row per enrollment and step it reached: first and last event and
  which kinds of engagement it showed there. The funnel, velocity, coherence and time in
  stage are computed from it. It references the pseudonymous enrollment, never a person.
- `EnrollmentMarket`: the market of an enrollment (its first delivery's jurisdiction).
- `Watermark`: how far `analytics.rollups` has read events and deliveries.
- `AnalyticsGrant`: a channel token that may read `GET /api/v1/analytics/...`.

Every table here is recomputable from events + deliveries (`manage.py rebuild_analytics`).
"""

from __future__ import annotations

from django.db import models


class Watermark(models.Model):
    """The highest event / delivery id a rollup run has read (rows with a few thousand ids
    below it are re-read every run: ids are not committed in order)."""

    name = models.CharField(max_length=40, primary_key=True)
    last_id = models.BigIntegerField(default=0)
    window_rows = models.BigIntegerField(
        default=0, help_text="Rows a run read with an id in (last_id - REREAD_IDS, last_id]: "
        "more there now means a batch committed late (re-read even with nothing newer)")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_id}"


class DailyRollup(models.Model):
    day = models.DateField()
    journey = models.ForeignKey("journeys.Journey", on_delete=models.CASCADE, related_name="+")
    stage = models.ForeignKey("journeys.Stage", on_delete=models.CASCADE, related_name="+")
    step = models.ForeignKey("journeys.Step", on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=40)
    market = models.CharField(max_length=2, blank=True)
    module_version_id = models.BigIntegerField(default=0, help_text="0: all content of the step")
    deliveries = models.PositiveIntegerField(default=0)
    events = models.PositiveIntegerField(default=0)
    opened = models.PositiveIntegerField(default=0)
    clicked = models.PositiveIntegerField(default=0)
    downloaded = models.PositiveIntegerField(default=0)
    declined = models.PositiveIntegerField(default=0)
    ignored = models.PositiveIntegerField(default=0)
    attended = models.PositiveIntegerField(default=0)
    silent = models.PositiveIntegerField(default=0, help_text="no_engagement_for events")
    recipients = models.PositiveIntegerField(default=0, help_text="Distinct enrollments that day")

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["day", "journey", "step", "channel", "market", "module_version_id"],
            name="analytics_rollup_cell_once")]
        indexes = [models.Index(fields=["journey", "day"], name="analytics_rollup_journey_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.journey_id}/{self.step_id} {self.channel}/{self.market}"


class RecipientStep(models.Model):
    journey = models.ForeignKey("journeys.Journey", on_delete=models.CASCADE, related_name="+")
    enrollment = models.ForeignKey("journeys.Enrollment", on_delete=models.CASCADE,
                                   related_name="+")
    stage = models.ForeignKey("journeys.Stage", on_delete=models.CASCADE, related_name="+")
    step = models.ForeignKey("journeys.Step", on_delete=models.CASCADE, related_name="+")
    market = models.CharField(max_length=2, blank=True)
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()
    opened = models.BooleanField(default=False)
    clicked = models.BooleanField(default=False)
    declined = models.BooleanField(default=False)
    ignored = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["enrollment", "step"],
                                               name="analytics_recipient_step_once")]
        indexes = [models.Index(fields=["journey", "first_at"], name="analytics_rstep_journey")]

    def __str__(self) -> str:
        return f"enrollment {self.enrollment_id} at step {self.step_id}"


class EnrollmentMarket(models.Model):
    enrollment = models.OneToOneField("journeys.Enrollment", on_delete=models.CASCADE,
                                      primary_key=True, related_name="+")
    market = models.CharField(max_length=2)

    def __str__(self) -> str:
        return f"enrollment {self.enrollment_id} in {self.market}"


class AnalyticsGrant(models.Model):
    """A channel token with the `analytics` scope (reads aggregated, suppressed figures of
    the journeys in its jurisdictions)."""

    token = models.OneToOneField("delivery.ChannelToken", on_delete=models.CASCADE,
                                 related_name="analytics_grant")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"analytics scope for {self.token}"
