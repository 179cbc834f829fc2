"""Records of the review workflow: rounds, signatures, comments, signing state, audit trail.

Signatures and audit entries are append-only at every layer: model `save()`/`delete()`,
queryset writes, and on PostgreSQL a trigger (migration 0002) refusing UPDATE and DELETE.
They point at an immutable `ModuleVersion` and carry its sha256, never the live module.
Users are referenced with PROTECT: a person who signed is deactivated, never deleted.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from .roles import Role


class AppendOnlyError(Exception):
    """Raised on any attempt to change or delete an append-only record."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only: they cannot be updated")

    def bulk_update(self, *args, **kwargs):
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only: they cannot be updated")

    def delete(self):
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only: they cannot be deleted")


AppendOnlyManager = models.Manager.from_queryset(AppendOnlyQuerySet)


class ReviewRecordQuerySet(models.QuerySet):
    """Review records follow their version's brand (`content.permissions`): people see
    those of the brands they may see; a channel caller sees none (reviews are internal)."""

    def restrict(self, user_or_client, action: str = "view"):
        from content.permissions import restrict_people

        return restrict_people(self, user_or_client, action, "version__module__brand")


class SignatureQuerySet(ReviewRecordQuerySet, AppendOnlyQuerySet):
    pass


class AppendOnlyModel(models.Model):
    objects = AppendOnlyManager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} {self.pk} is append-only: it cannot change")
        kwargs.pop("force_update", None)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{type(self).__name__} {self.pk} is append-only: it cannot be deleted")


class Meaning(models.TextChoices):
    """What a signature means (21 CFR 11.50(a)(3))."""

    APPROVE = "approve", "Approved"
    REQUEST_CHANGES = "request_changes", "Changes requested"
    WITHDRAW = "withdraw", "Withdrawn"
    RECALL = "recall", "Recalled by its author"


DECISION_MEANINGS = (Meaning.APPROVE, Meaning.REQUEST_CHANGES)

# A recall is signed by the version's author, who holds no MLR role for it.
AUTHOR_ROLE = "author"
SIGNATURE_ROLES = [*Role.choices, (AUTHOR_ROLE, "Author")]


class ReviewRoundQuerySet(models.QuerySet):
    """Review rounds follow their version's brand (see `ReviewRecordQuerySet.restrict`)."""

    def restrict(self, user_or_client, action: str = "view"):
        from content.permissions import restrict_people

        return restrict_people(self, user_or_client, action, "version__module__brand")

    def open(self):
        return self.filter(outcome=ReviewRound.Outcome.OPEN)

    def overdue(self, now=None):
        """Open rounds past their due date (the inbox's overdue badge)."""
        from django.utils import timezone

        return self.open().filter(due_at__lt=now or timezone.now())


class ReviewRound(models.Model):
    """One submission of a version to MLR review; a resubmission opens the next round."""

    class Outcome(models.TextChoices):
        OPEN = "open", "Open"
        APPROVED = "approved", "Approved"
        CHANGES_REQUESTED = "changes_requested", "Changes requested"
        RECALLED = "recalled", "Recalled by its author"

    version = models.ForeignKey("content.ModuleVersion", on_delete=models.PROTECT,
                                related_name="review_rounds")
    number = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, help_text="The version's sha256 when submitted")
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="submitted_rounds")
    submitted_at = models.DateTimeField()
    due_at = models.DateTimeField()
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.OPEN)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_at_due_date = models.BooleanField(
        default=False, help_text="Closed by the due date (beat) rather than by the last decision")
    undecided_roles = models.JSONField(
        default=list, blank=True,
        help_text="Roles that had not decided when the round closed at its due date")
    reminded_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    content_snapshot = models.JSONField(
        default=dict, blank=True,
        help_text="What reviewers saw in this round: subject, HTML, rendered text, tags "
                  "(approvals.snapshots; the round-to-round diff reads it)")

    objects = ReviewRoundQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        ordering = ["version_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["version", "number"], name="review_round_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.version} round {self.number}"

    @property
    def is_open(self) -> bool:
        return self.outcome == self.Outcome.OPEN

    @property
    def is_overdue(self) -> bool:
        from django.utils import timezone

        return self.is_open and self.due_at < timezone.now()

    @property
    def label(self) -> str:
        """"v2 · round 3" (approvals.workflow.round_label)."""
        from .workflow import round_label

        return round_label(self.version.number, self.number)


class Signature(AppendOnlyModel):
    """An electronic signature: who (printed name + user), when (UTC), what it means, on which
    exact bytes (sha256) and in which review round. Never edited, never deleted."""

    version = models.ForeignKey("content.ModuleVersion", on_delete=models.PROTECT,
                                related_name="signatures")
    round = models.PositiveIntegerField(help_text="Review round; withdrawal signs the last one")
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="signatures")
    printed_name = models.CharField(max_length=300)
    role = models.CharField(max_length=20, choices=SIGNATURE_ROLES)
    meaning = models.CharField(max_length=20, choices=Meaning.choices)
    comment = models.TextField(blank=True)
    sha256 = models.CharField(max_length=64)
    signed_at = models.DateTimeField()

    objects = models.Manager.from_queryset(SignatureQuerySet)()
    history = HistoricalRecords()

    class Meta:
        ordering = ["version_id", "round", "signed_at", "id"]
        constraints = [
            # The database itself refuses a second decision for a role, or by a person, in
            # one round: a double click or a race loses the second insert.
            models.UniqueConstraint(
                fields=["version", "round", "role"],
                condition=models.Q(meaning__in=["approve", "request_changes"]),
                name="signature_one_decision_per_role_per_round",
            ),
            models.UniqueConstraint(
                fields=["version", "round", "signer"],
                condition=models.Q(meaning__in=["approve", "request_changes"]),
                name="signature_one_role_per_signer_per_round",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.printed_name} ({self.role}) {self.get_meaning_display().lower()} {self.version}"

    def manifest_dict(self) -> dict:
        return {
            "signer_id": self.signer_id,
            "printed_name": self.printed_name,
            "role": self.role,
            "meaning": self.meaning,
            "signed_at": self.signed_at.astimezone(_utc()).isoformat().replace("+00:00", "Z"),
            "sha256": self.sha256,
            "round": self.round,
        }


class Comment(models.Model):
    """A reviewer's remark anchored to one version (and the sha256 it was made on)."""

    class Anchor(models.TextChoices):
        GENERAL = "general", "General"
        SUBJECT = "subject", "Subject"
        BODY = "body", "Body"
        REFERENCES = "references", "References"
        TAGS = "tags", "Tags"
        COMPANIONS = "companions", "Companions / exclusions"

    version = models.ForeignKey("content.ModuleVersion", on_delete=models.PROTECT,
                                related_name="review_comments")
    sha256 = models.CharField(max_length=64)
    round = models.PositiveIntegerField(default=0)
    anchor = models.CharField(max_length=20, choices=Anchor.choices, default=Anchor.GENERAL)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="review_comments")
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ReviewRecordQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Comment by {self.author} on {self.version}"


class Annotation(models.Model):
    """A reviewer's remark anchored to a precise place of a version: a quote of the rendered
    preview's text, a reference, a tag, a companion or the image. Open until the annotating
    role or the version's author resolves it; carried into the version's later rounds.
    Written only by `approvals.annotations`; every change is audited and kept in history."""

    class Kind(models.TextChoices):
        TEXT = "text", "Text in the preview"
        REFERENCE = "reference", "Reference"
        TAG = "tag", "Tag"
        COMPANION = "companion", "Companion / exclusion"
        IMAGE = "image", "Image"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    version = models.ForeignKey("content.ModuleVersion", on_delete=models.PROTECT,
                                related_name="annotations")
    round = models.PositiveIntegerField(help_text="Review round it was made in")
    sha256 = models.CharField(max_length=64, help_text="The version's sha256 it was made on")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="annotations")
    role = models.CharField(max_length=20, choices=Role.choices)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    anchor = models.JSONField(
        default=dict, blank=True,
        help_text='text: {"exact", "prefix", "suffix", "block"}; reference: {"reference_id"}; '
                  'tag: {"tag"}; companion: {"module_code"}; image: {"asset_id"}')
    body = models.TextField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN,
                             db_index=True)
    anchor_changed = models.BooleanField(
        default=False, help_text="The anchored text no longer occurs in a later round's text")
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    null=True, blank=True, related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ReviewRecordQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["version", "state"])]

    def __str__(self) -> str:
        return f"{self.get_role_display()} annotation {self.pk} on {self.version}"

    @property
    def is_open(self) -> bool:
        return self.state == self.State.OPEN


class ReviewPolicy(models.Model):
    """A brand's review clock: days to decide a round, when to remind the roles that have
    not decided, when and to whom to escalate (`approvals.review_policy`; beat acts on it).
    Brands without one use the defaults (`TESSERA_REVIEW_DUE_DAYS`, 1, 2, owner)."""

    class EscalateTo(models.TextChoices):
        OWNER = "owner", "The module's owner"
        MEDICAL = "medical", "Medical reviewers"
        LEGAL = "legal", "Legal reviewers"
        REGULATORY = "regulatory", "Regulatory reviewers"
        ADMINISTRATORS = "administrators", "Administrators (superusers)"

    brand = models.OneToOneField("content.Brand", on_delete=models.PROTECT,
                                 related_name="review_policy")
    due_days = models.PositiveIntegerField(default=5, help_text="Days from submission to due date")
    reminder_days = models.PositiveIntegerField(
        default=1, help_text="Remind the roles that have not decided this many days before the "
                             "due date (0: on the due date)")
    escalation_days = models.PositiveIntegerField(
        default=2, help_text="Escalate this many days after the due date")
    escalate_to = models.CharField(max_length=20, choices=EscalateTo.choices,
                                   default=EscalateTo.OWNER)

    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "review policies"

    def __str__(self) -> str:
        return f"Review policy of {self.brand}"


class SigningState(models.Model):
    """Consecutive wrong signing passwords of one user; locked after the configured count."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                related_name="signing_state")
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()

    def __str__(self) -> str:
        return f"Signing state of {self.user}"

    @property
    def is_locked(self) -> bool:
        return self.locked_at is not None


class AuditEntry(AppendOnlyModel):
    """One workflow event in a hash chain: `hash` = sha256(canonical entry + `prev_hash`).

    Written only by `approvals.audit.record`; `verify_audit` recomputes the chain.
    """

    seq = models.PositiveBigIntegerField(unique=True)
    created_at = models.DateTimeField()
    event = models.CharField(max_length=60, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                              blank=True, related_name="audit_entries")
    actor_name = models.CharField(max_length=300, blank=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=300, blank=True)
    module_code = models.CharField(max_length=40, blank=True, db_index=True)
    data = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, unique=True)
    hash = models.CharField(max_length=64, unique=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["seq"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.event} {self.target_repr}"


def _utc():
    from datetime import UTC

    return UTC


class AuditCheckpoint(AppendOnlyModel):
    """A signed anchor of the audit chain's head: which entry was newest, its hash and how many
    entries there were, sealed with an HMAC under the anchor key (approvals/anchoring.py).

    `verify_audit` checks the chain against every checkpoint, so deleting the newest entries
    (which leaves a shorter but still well-linked chain) is detected.
    """

    head_seq = models.PositiveBigIntegerField(help_text="seq of the newest entry (0: empty chain)")
    head_hash = models.CharField(max_length=64)
    entry_count = models.PositiveBigIntegerField()
    created_at = models.DateTimeField()
    key_source = models.CharField(max_length=40, help_text="Which key sealed it (a name, never "
                                  "the key): TESSERA_AUDIT_ANCHOR_KEY or derived from SECRET_KEY")
    hmac = models.CharField(max_length=64)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"checkpoint {self.pk}: head #{self.head_seq} ({self.entry_count} entries)"


class FirstUse(AppendOnlyModel):
    """When a version was first delivered in a market: for a US promotional version, the
    "date of first use" of FDA Form 2253 (21 CFR 314.81(b)(3)(i)). Written by the serving
    path (`delivery.serving.commit_deliveries`) as an insert-if-absent, so the first
    delivery's time stays and later ones change nothing."""

    version = models.ForeignKey("content.ModuleVersion", on_delete=models.PROTECT,
                                related_name="first_uses")
    jurisdiction = models.CharField(max_length=2)
    first_used_at = models.DateTimeField()

    objects = models.Manager.from_queryset(SignatureQuerySet)()

    class Meta:
        ordering = ["-first_used_at"]
        constraints = [models.UniqueConstraint(fields=["version", "jurisdiction"],
                                               name="first_use_once_per_market")]

    def __str__(self) -> str:
        return f"{self.version} first used in {self.jurisdiction} {self.first_used_at:%Y-%m-%d}"


class Form2253Submission(AppendOnlyModel):
    """A version's FDA Form 2253 submission as recorded by a regulatory reviewer: the date
    it was submitted and the submission's reference. Append-only (a correction is a new
    record; the newest counts)."""

    version = models.ForeignKey("content.ModuleVersion", on_delete=models.PROTECT,
                                related_name="form_2253_submissions")
    submitted_on = models.DateField()
    reference = models.CharField(max_length=100, help_text="e.g. the FDA submission number")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    related_name="+")
    recorded_at = models.DateTimeField()

    objects = models.Manager.from_queryset(SignatureQuerySet)()

    class Meta:
        ordering = ["-recorded_at", "-id"]

    def __str__(self) -> str:
        return f"Form 2253 for {self.version}: {self.reference} ({self.submitted_on})"
