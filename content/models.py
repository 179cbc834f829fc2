"""The content-module library: brands, taxonomy, modules, versions, references, assets.

Rules that protect compliance live here and in `content/rules.py`, so that they hold for
the admin, the API, the shell and Celery tasks alike:
- a version in a locked state (approved, expired, withdrawn) never changes content;
- audited models refuse `QuerySet.update()` and bulk writes (history would miss them);
- HTML bodies are sanitised and tokens validated on every save.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Max
from simple_history.models import HistoricalRecords


class ImmutableVersionError(ValidationError):
    """Raised when anything tries to change a version whose content is frozen."""


class AuditedQuerySet(models.QuerySet):
    """Refuses the write paths that bypass model `save()` and therefore the history."""

    def update(self, **kwargs):
        raise NotImplementedError(
            f"{self.model.__name__}: QuerySet.update() bypasses the audit history; save each object"
        )

    def bulk_create(self, *args, **kwargs):
        raise NotImplementedError(f"{self.model.__name__}: bulk_create() bypasses the audit history")

    def bulk_update(self, *args, **kwargs):
        raise NotImplementedError(f"{self.model.__name__}: bulk_update() bypasses the audit history")

    def delete(self):
        # Deleting row by row goes through Model.delete(), which applies the immutability rule.
        deleted = 0
        with transaction.atomic():
            for obj in self:
                obj.delete()
                deleted += 1
        return deleted, {self.model._meta.label: deleted}

    def restrict(self, user_or_client, action: str = "view"):
        """The rows `user_or_client` may `action` ("view" or "change"), by the one rule in
        `content.permissions`.

        People: by brand — superusers every brand, MLR reviewers every brand to view,
        authors the brands they hold `content.author_brand` on, anyone else nothing (the
        model names the path to its brand in `brand_lookup`). A channel caller (API token)
        views only deliverable versions tagged with one of its channels and one of its
        jurisdictions, and the rows those versions show (the model names the path from a
        version to itself in `lookup_from_version`); it changes nothing.
        """
        from .permissions import VIEW, channel_scope, check_action, restrict_people

        check_action(action)
        scope = channel_scope(user_or_client)
        if scope is None:
            return restrict_people(self, user_or_client, action, self.model.brand_lookup)
        if action != VIEW:
            return self.none()
        if self.model is ModuleVersion:
            return deliverable_in_scope(self, scope)
        versions = deliverable_in_scope(ModuleVersion.objects.all(), scope)
        return self.filter(pk__in=versions.values(self.model.lookup_from_version))

    def for_user(self, user):
        """The rows `user` may view: `restrict(user, "view")`."""
        return self.restrict(user, "view")


def deliverable_in_scope(versions, scope):
    """`versions` deliverable now and tagged with one of the scope's channels and one of its
    jurisdictions (EXISTS, not joins: no duplicate rows, no DISTINCT)."""
    from django.db.models import Exists, OuterRef
    from django.utils import timezone

    from .deliverability import deliverable_q

    channel_through = ModuleVersion.channels.through
    jurisdiction_through = ModuleVersion.jurisdictions.through
    return versions.filter(
        deliverable_q(timezone.now()),
        Exists(channel_through.objects.filter(
            moduleversion_id=OuterRef("pk"), channel__code__in=scope.channels)),
        Exists(jurisdiction_through.objects.filter(
            moduleversion_id=OuterRef("pk"), jurisdiction__code__in=scope.jurisdictions)),
    )


AuditedManager = models.Manager.from_queryset(AuditedQuerySet)


def frozen_use_error(obj, versions, fields: tuple[str, ...], what: str) -> str | None:
    """Why `obj` may not change: versions already submitted or approved show its content.

    A reference's citation and an asset's image and alt text are part of what reviewers
    sign (sha256) or see; changing them under a frozen version would change signed content.
    Returns None when none of `fields` changed or no frozen version uses the object.
    """
    if not obj.pk:
        return None
    stored = type(obj).objects.filter(pk=obj.pk).values(*fields).first()
    if stored is None or all(getattr(obj, f) == stored[f] for f in fields):
        return None
    frozen = list(versions.exclude(state__in=EDITABLE_STATES).select_related("module")[:5])
    if not frozen:
        return None
    names = ", ".join(str(v) for v in frozen)
    return (f"This {what} is used by {names}, whose content is frozen: its "
            f"{', '.join(f.removesuffix('_id') for f in fields if getattr(obj, f) != stored[f])} "
            f"cannot change. Create a new {what} instead.")


class Purpose(models.TextChoices):
    PROMOTIONAL = "promotional", "Promotional"
    MEDICAL = "medical", "Medical (non-promotional)"
    PATIENT_SUPPORT = "patient_support", "Patient support"


class Brand(models.Model):
    """A brand / product; the unit of author permissions (django-guardian object perms)."""

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    product_name = models.CharField(max_length=120, help_text="Proprietary and generic name")
    indication = models.CharField(max_length=300, blank=True)
    approval_validity_days = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Days an approval stays valid; empty = the site default.",
    )
    expiry_notice_days = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Days before expiry the owners are notified; empty = the site default.",
    )
    requires_form_2253_before_first_use = models.BooleanField(
        default=False, verbose_name="Requires Form 2253 before first use",
        help_text="US promotional versions are delivered only once their FDA Form 2253 "
                  "submission is recorded (refusal form_2253_missing).",
    )

    objects = AuditedManager()
    history = HistoricalRecords()
    brand_lookup = "pk"
    lookup_from_version = "module__brand"

    class Meta:
        ordering = ["name"]
        permissions = [("author_brand", "Can author modules of this brand")]

    def __str__(self) -> str:
        return self.name

    @property
    def effective_validity_days(self) -> int:
        return self.approval_validity_days or settings.TESSERA_APPROVAL_VALIDITY_DAYS

    @property
    def effective_notice_days(self) -> int:
        return self.expiry_notice_days or settings.TESSERA_EXPIRY_NOTICE_DAYS


class TaxonomyTerm(models.Model):
    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=120)

    class Meta:
        abstract = True
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Audience(TaxonomyTerm):
    history = HistoricalRecords()


class Specialty(models.Model):
    audience = models.ForeignKey(Audience, on_delete=models.PROTECT, related_name="specialties")
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=120)

    history = HistoricalRecords()

    class Meta:
        ordering = ["audience__code", "code"]
        constraints = [
            models.UniqueConstraint(fields=["audience", "code"], name="specialty_unique_per_audience")
        ]
        verbose_name_plural = "specialties"

    def __str__(self) -> str:
        return f"{self.name} ({self.audience.code})"


class Stage(models.Model):
    """A journey stage of one audience (physicians, patients and pharmacists differ)."""

    audience = models.ForeignKey(Audience, on_delete=models.PROTECT, related_name="stages")
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=120)
    order = models.PositiveSmallIntegerField(default=0)
    description = models.TextField(blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["audience__code", "order"]
        constraints = [
            models.UniqueConstraint(fields=["audience", "code"], name="stage_unique_per_audience")
        ]

    def __str__(self) -> str:
        return f"{self.audience.code}: {self.name}"


class Jurisdiction(models.Model):
    """A market, by ISO 3166-1 alpha-2 code. The legal text its emails and pages carry is
    each brand's approved footer module for the market (kind `footer`), not free text."""

    code = models.CharField(max_length=2, unique=True, help_text="ISO 3166-1 alpha-2, e.g. US, DE")
    name = models.CharField(max_length=120)

    history = HistoricalRecords()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    def clean(self):
        self.code = (self.code or "").upper()
        if len(self.code) != 2 or not self.code.isalpha():
            raise ValidationError({"code": "Use a two-letter ISO 3166-1 alpha-2 code, e.g. US or DE."})


class Channel(TaxonomyTerm):
    history = HistoricalRecords()


class Locale(models.Model):
    code = models.CharField(max_length=20, unique=True, help_text="BCP 47, e.g. en, de, en-US")
    name = models.CharField(max_length=120)

    history = HistoricalRecords()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Reference(models.Model):
    """A source a claim cites: a publication or a label section."""

    class Source(models.TextChoices):
        PUBLICATION = "publication", "Publication"
        LABEL = "label", "Label / SmPC section"
        DATA_ON_FILE = "data_on_file", "Data on file"

    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="references")
    code = models.SlugField(max_length=40, help_text="Short key, e.g. REF-01")
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.PUBLICATION)
    citation = models.TextField(help_text="Full citation as it will be printed")
    url = models.URLField(blank=True)
    label_section = models.CharField(max_length=80, blank=True)

    objects = AuditedManager()
    history = HistoricalRecords()
    brand_lookup = "brand"
    lookup_from_version = "citations"

    class Meta:
        ordering = ["brand__name", "code"]
        constraints = [
            models.UniqueConstraint(fields=["brand", "code"], name="reference_unique_per_brand")
        ]

    def __str__(self) -> str:
        return f"{self.code}: {self.citation[:60]}"

    SIGNED_FIELDS = ("brand_id", "code", "citation")

    def change_error(self) -> str | None:
        if self.pk is None:
            return None
        return frozen_use_error(self, self.cited_by.all(), self.SIGNED_FIELDS, "reference")

    def save(self, *args, **kwargs):
        error = self.change_error()
        if error:
            raise ImmutableVersionError(error)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        frozen = self.cited_by.exclude(state__in=EDITABLE_STATES).select_related("module")[:5]
        if frozen:
            raise ImmutableVersionError(
                f"{self.code} is cited by {', '.join(str(v) for v in frozen)}: it cannot be deleted.")
        return super().delete(*args, **kwargs)


class ModuleKind(models.TextChoices):
    HEADLINE = "headline", "Headline"
    BODY = "body", "Body copy"
    CLAIM = "claim", "Claim"
    ISI = "isi", "Important Safety Information"
    CTA = "cta", "Call to action"
    IMAGE = "image", "Image"
    DOSING = "dosing", "Dosing table"
    REFERENCE_LIST = "reference_list", "Reference list"
    FOOTER = "footer", "Footer"
    DISCLAIMER = "disclaimer", "Disclaimer"
    SUBJECT = "subject", "Email subject line"
    PREHEADER = "preheader", "Email preheader"


class ContentModule(models.Model):
    """A stable piece of content (identity `code`) whose text lives in numbered versions."""

    code = models.CharField(
        max_length=40, unique=True,
        help_text="Stable identity, e.g. CZN-EFF-001 (letters, digits and dashes)",
    )
    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="modules")
    kind = models.CharField(max_length=20, choices=ModuleKind.choices)
    purpose = models.CharField(max_length=20, choices=Purpose.choices, default=Purpose.PROMOTIONAL)
    title = models.CharField(max_length=200, help_text="Internal name for authors and reviewers")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_modules"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AuditedManager()
    history = HistoricalRecords()
    brand_lookup = "brand"
    lookup_from_version = "module"

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    def clean(self):
        from .rules import validate_module_code

        self.code = (self.code or "").strip().upper()
        validate_module_code(self.code)

    # What reviewers signed for (code is in the sha256) or judged (kind, purpose, brand).
    SIGNED_FIELDS = ("code", "brand_id", "kind", "purpose")

    def change_error(self) -> str | None:
        if self.pk is None:
            return None
        return frozen_use_error(self, self.versions.all(), self.SIGNED_FIELDS, "module")

    def save(self, *args, **kwargs):
        error = self.change_error()
        if error:
            raise ImmutableVersionError(error)
        super().save(*args, **kwargs)

    def latest_version(self) -> ModuleVersion | None:
        return self.versions.order_by("-number").first()

    def new_version(self, *, author) -> ModuleVersion:
        """Start a change: copy the newest version into a draft with the next number."""
        from .versioning import new_version

        return new_version(self, author=author)


class VersionState(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    APPROVED = "approved", "Approved"
    EXPIRED = "expired", "Expired"
    WITHDRAWN = "withdrawn", "Withdrawn"


# Content can be edited only while an author holds the version; from submission on, the
# bytes reviewers sign are frozen (a change means a new version).
EDITABLE_STATES = frozenset({VersionState.DRAFT, VersionState.CHANGES_REQUESTED})
LOCKED_STATES = frozenset({VersionState.APPROVED, VersionState.EXPIRED, VersionState.WITHDRAWN})

# Fields whose change is a change of content (covered by the sha256).
# expires_at is not among them: the workflow sets it when the version is approved.
CONTENT_FIELDS = ("locale_id", "subject", "body_html", "body_text", "asset_id",
                  "token_fallbacks", "valid_from")
# Fields the workflow may still write on a frozen version.
WORKFLOW_FIELDS = frozenset({"state", "approved_at", "withdrawn_at", "withdrawal_reason",
                             "expires_at", "expiry_notified_at", "updated_at", "sha256"})


class ModuleVersion(models.Model):
    """One immutable-once-approved text of a module, with its tags and its sha256."""

    module = models.ForeignKey(ContentModule, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    state = models.CharField(
        max_length=20, choices=VersionState.choices, default=VersionState.DRAFT, db_index=True
    )
    locale = models.ForeignKey(Locale, on_delete=models.PROTECT, related_name="versions")
    subject = models.CharField(
        max_length=200, blank=True, help_text="Email subject when this module provides one"
    )
    body_html = models.TextField(blank=True, help_text="Sanitised HTML; tokens like {{ recipient.last_name }}")
    body_text = models.TextField(blank=True, help_text="Plain-text version; derived from HTML when empty")
    asset = models.ForeignKey(
        "content.Asset", on_delete=models.PROTECT, null=True, blank=True, related_name="versions"
    )
    token_fallbacks = models.JSONField(
        default=dict, blank=True,
        help_text='Value used when a recipient lacks a field, e.g. {"first_name": "Doctor"}',
    )
    audiences = models.ManyToManyField(Audience, blank=True, related_name="versions")
    specialties = models.ManyToManyField(Specialty, blank=True, related_name="versions")
    stages = models.ManyToManyField(Stage, blank=True, related_name="versions")
    jurisdictions = models.ManyToManyField(Jurisdiction, blank=True, related_name="versions")
    channels = models.ManyToManyField(Channel, blank=True, related_name="versions")
    citations = models.ManyToManyField(Reference, blank=True, related_name="cited_by")
    # Companions and exclusions are signed content of the version (in its sha256): a
    # change is a new version and a new review.
    requires = models.ManyToManyField(
        ContentModule, blank=True, related_name="required_by_versions",
        help_text="Companions: modules that must travel with this one (e.g. the ISI)",
    )
    excludes = models.ManyToManyField(
        ContentModule, blank=True, related_name="excluded_by_versions",
        help_text="Modules that must never appear in the same assembly as this one",
    )
    valid_from = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawal_reason = models.TextField(blank=True)
    expiry_notified_at = models.DateTimeField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, editable=False, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="authored_versions"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AuditedManager()
    history = HistoricalRecords(
        m2m_fields=[audiences, specialties, stages, jurisdictions, channels, citations,
                    requires, excludes]
    )
    brand_lookup = "module__brand"
    lookup_from_version = "pk"

    class Meta:
        ordering = ["module__code", "number"]
        constraints = [
            models.UniqueConstraint(fields=["module", "number"], name="version_number_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.module.code} v{self.number}"

    @property
    def is_editable(self) -> bool:
        return self.state in EDITABLE_STATES

    @property
    def is_locked(self) -> bool:
        return self.state in LOCKED_STATES

    def clean(self):
        from .rules import validate_version

        validate_version(self)

    def save(self, *args, **kwargs):
        from .rules import compute_sha256, prepare_version_content

        update_fields = kwargs.get("update_fields")
        if self.pk:
            stored = type(self).objects.filter(pk=self.pk).values(*CONTENT_FIELDS, "state").first()
            if stored and stored["state"] not in EDITABLE_STATES:
                if update_fields is not None and set(update_fields) <= WORKFLOW_FIELDS:
                    pass  # the workflow moving state; content fields untouched
                elif any(getattr(self, f) != stored[f] for f in CONTENT_FIELDS):
                    raise ImmutableVersionError(
                        f"{self} is {stored['state'].replace('_', ' ')}: its content cannot change. "
                        "Create a new version instead."
                    )
        if self.number is None:
            self.number = (
                ModuleVersion.objects.filter(module_id=self.module_id).aggregate(n=Max("number"))["n"] or 0
            ) + 1
        workflow_only = update_fields is not None and set(update_fields) <= WORKFLOW_FIELDS
        if (self.is_editable or not self.pk) and not workflow_only:
            # A save that writes only workflow fields (e.g. refresh_sha256 after a tag
            # change) leaves the content, and the sanitiser's report, as they are.
            prepare_version_content(self)
        if update_fields is None or "sha256" in update_fields:
            self.sha256 = compute_sha256(self)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if not self.is_editable:
            raise ImmutableVersionError(
                f"{self} is {self.get_state_display().lower()}: it cannot be deleted. "
                "Withdraw it instead."
            )
        return super().delete(*args, **kwargs)

    def refresh_sha256(self) -> None:
        """Recompute the sha256 after tag or citation changes (which happen after save)."""
        from .rules import compute_sha256

        digest = compute_sha256(self)
        if digest != self.sha256:
            self.sha256 = digest
            self.save(update_fields=["sha256", "updated_at"])


def asset_upload_to(instance: Asset, filename: str) -> str:
    return f"assets/{instance.brand_id}/{instance.content_sha256[:2]}/{instance.content_sha256}.{instance.format.lower()}"


class Asset(models.Model):
    """An image uploaded through Pillow: validated, re-encoded, with renditions."""

    class Format(models.TextChoices):
        PNG = "PNG", "PNG"
        JPEG = "JPEG", "JPEG"
        WEBP = "WEBP", "WebP"
        GIF = "GIF", "GIF"

    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="assets")
    title = models.CharField(max_length=200)
    alt_text = models.CharField(max_length=300, help_text="Required: what the image shows, for screen readers")
    image = models.ImageField(upload_to=asset_upload_to, width_field="width", height_field="height")
    format = models.CharField(max_length=8, choices=Format.choices)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    content_sha256 = models.CharField(max_length=64, editable=False)
    renditions = models.JSONField(default=dict, blank=True, editable=False,
                                  help_text="name → media path, filled by a Celery task")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    related_name="uploaded_assets")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AuditedManager()
    history = HistoricalRecords()
    brand_lookup = "brand"
    lookup_from_version = "asset"

    class Meta:
        ordering = ["-created_at"]
        # Image addresses name the sha256: every image request finds its asset by it
        # (content.assets._stored_under).
        indexes = [models.Index(fields=["content_sha256"], name="asset_content_sha256_idx")]

    def __str__(self) -> str:
        return self.title

    SIGNED_FIELDS = ("brand_id", "image", "content_sha256", "format", "alt_text")

    def change_error(self) -> str | None:
        if self.pk is None:
            return None
        return frozen_use_error(self, self.versions.all(), self.SIGNED_FIELDS, "asset")

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        if update_fields is None or set(update_fields) & set(self.SIGNED_FIELDS):
            error = self.change_error()
            if error:
                raise ImmutableVersionError(error)
        super().save(*args, **kwargs)


class MarketRule(models.Model):
    """A rule a market's law imposes on any content, whatever its author set: enforced when
    a version is submitted for review and when content is assembled
    (`content.market_rules` states what each kind means). Administrators keep them (admin,
    with history); authors cannot switch them off."""

    from .market_rules import RuleKind as Kind

    jurisdiction = models.ForeignKey(Jurisdiction, on_delete=models.PROTECT,
                                     related_name="market_rules")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    parameters = models.JSONField(
        default=dict, blank=True,
        help_text='Overrides of the kind\'s defaults, e.g. {"audiences": ["hcp", "pharmacist"]}',
    )
    rationale = models.CharField(max_length=300, blank=True,
                                 help_text="The law or code behind the rule, for reviewers")
    active = models.BooleanField(default=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["jurisdiction__code", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["jurisdiction", "kind"],
                                    name="market_rule_once_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.jurisdiction_id and self.jurisdiction.code}: {self.get_kind_display()}"

    def clean(self):
        from .market_rules import parameter_errors

        errors = parameter_errors(self.kind, self.parameters)
        if errors:
            raise ValidationError({"parameters": errors})
