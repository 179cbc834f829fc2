"""Admin forms for authors: brand-scoped choices and messages that say what and why."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from cms.api.parsers import GuardedJSONFormField

from .assets import validate_and_reencode
from .models import (
    EDITABLE_STATES,
    LOCKED_STATES,
    Asset,
    Brand,
    ContentModule,
    ModuleVersion,
    Reference,
)
from .permissions import authored_brands
from .rules import html_to_text


def authorable(queryset, user):
    """Rows of `queryset` whose brand `user` may write (the admin's choice lists)."""
    lookup = queryset.model.brand_lookup
    return queryset.filter(**{f"{lookup}__in": authored_brands(user).values("pk")})


class UserScopedModelForm(forms.ModelForm):
    """A ModelForm told who is editing, so its choices offer only that person's brands."""

    # Each admin builds the form class with `user` bound (see BrandScopedAdmin.get_form).
    user = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.scope_choices()

    def scope_choices(self) -> None:
        if "brand" in self.fields:
            self.fields["brand"].queryset = authored_brands(self.user)


class ContentModuleForm(UserScopedModelForm):
    class Meta:
        model = ContentModule
        fields = ["code", "brand", "kind", "purpose", "title"]

    def clean_code(self):
        code = (self.cleaned_data.get("code") or "").strip().upper()
        clash = ContentModule.objects.filter(code=code)
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if code and clash.exists():
            raise ValidationError(
                f"The module code {code} is already taken: codes are unique across all brands "
                "(and are compared in capitals). Choose another code.", code="duplicate_code")
        return code

    def _post_clean(self):
        super()._post_clean()
        error = self.instance.change_error()
        if error:
            self.add_error(None, ValidationError(error, code="module_in_use"))


class ModuleVersionForm(UserScopedModelForm):
    class Meta:
        model = ModuleVersion
        fields = ["module", "locale", "subject", "body_html", "body_text", "asset",
                  "token_fallbacks", "audiences", "specialties", "stages", "jurisdictions",
                  "channels", "citations", "requires", "excludes", "valid_from"]
        widgets = {"body_html": forms.Textarea(attrs={"rows": 10, "cols": 90}),
                   "body_text": forms.Textarea(attrs={"rows": 5, "cols": 90})}
        field_classes = {"token_fallbacks": GuardedJSONFormField}  # depth/number limits

    sanitise_report = None

    def scope_choices(self) -> None:
        fields = self.fields
        if "module" in fields:
            fields["module"].queryset = authorable(ContentModule.objects.all(), self.user)
            if self.instance.pk:
                fields["module"].disabled = True  # a version never moves to another module
        if "citations" in fields:
            fields["citations"].queryset = authorable(Reference.objects.all(), self.user)
        if "asset" in fields:
            fields["asset"].queryset = authorable(Asset.objects.all(), self.user)
        for name in ("requires", "excludes"):
            if name in fields:
                choices = authorable(ContentModule.objects.all(), self.user)
                if self.instance.pk:
                    choices = choices.exclude(pk=self.instance.module_id)
                fields[name].queryset = choices.select_related("brand")
        if "stages" in fields:
            fields["stages"].queryset = fields["stages"].queryset.select_related("audience")
        if "specialties" in fields:
            fields["specialties"].queryset = fields["specialties"].queryset.select_related("audience")

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk:
            stored = ModuleVersion.objects.filter(pk=self.instance.pk).values_list("state", flat=True).first()
            if stored is not None and stored not in EDITABLE_STATES:
                raise ValidationError(
                    f"{self.instance} is {stored.replace('_', ' ')}: its content cannot change. "
                    "Use the “New version” action to start a draft.", code="locked")
        module = cleaned.get("module") or (self.instance.module if self.instance.pk else None)
        if module is not None and not self.instance.pk:
            open_version = module.versions.exclude(state__in=LOCKED_STATES).order_by("-number").first()
            if open_version is not None:
                raise ValidationError(
                    f"{open_version} is still {open_version.get_state_display().lower()}: edit "
                    "it instead of starting another version.", code="open_version")
        if module is not None:
            for ref in cleaned.get("citations") or ():
                if ref.brand_id != module.brand_id:
                    self.add_error("citations", f"{ref.code} is a reference of {ref.brand}, not of "
                                                f"{module.brand}.")
            asset = cleaned.get("asset")
            if asset is not None and asset.brand_id != module.brand_id:
                self.add_error("asset", f"{asset} is an asset of {asset.brand}, not of {module.brand}.")
            for name in ("requires", "excludes"):
                for other in cleaned.get(name) or ():
                    if other.brand_id != module.brand_id:
                        self.add_error(name, f"{other.code} belongs to {other.brand}; companions "
                                             f"and exclusions must be modules of {module.brand}.")
                    elif other.pk == module.pk:
                        self.add_error(name, f"{module.code} cannot be its own companion or "
                                             "exclusion.")
        audiences = set(cleaned.get("audiences") or ())
        for name in ("stages", "specialties"):
            for term in cleaned.get(name) or ():
                if term.audience not in audiences:
                    self.add_error(name, f"{term} belongs to the audience {term.audience}, which "
                                         "this version is not tagged for.")
        self._rederive_stale_text(cleaned)
        return cleaned

    def _rederive_stale_text(self, cleaned) -> None:
        # The plain text is derived from the HTML when empty; when the author changed the
        # HTML but left the text that was derived from the old HTML, derive it again.
        if not self.instance.pk or "body_html" not in self.changed_data:
            return
        old_html = self.initial.get("body_html") or ""
        old_text = self.initial.get("body_text") or ""
        if cleaned.get("body_text", "") == old_text and old_text == html_to_text(old_html):
            cleaned["body_text"] = ""

    def _post_clean(self):
        super()._post_clean()
        # Model.clean() sanitised the HTML; keep its report for the admin's message (the
        # save itself sees already-clean HTML and would report nothing).
        self.sanitise_report = getattr(self.instance, "sanitise_report", None)


class VersionInlineForm(forms.ModelForm):
    """Versions listed on their module: editable while draft, read-only from submission on."""

    class Meta:
        model = ModuleVersion
        fields = ["locale", "subject", "body_html"]
        widgets = {"body_html": forms.Textarea(attrs={"rows": 3, "cols": 60}),
                   "subject": forms.TextInput(attrs={"size": 30})}

    sanitise_report = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.instance.is_editable:
            for field in self.fields.values():
                field.disabled = True

    def _post_clean(self):
        if self.instance.pk and not self.instance.is_editable:
            return  # nothing of a frozen version is validated or written here
        super()._post_clean()
        self.sanitise_report = getattr(self.instance, "sanitise_report", None)


class ReferenceForm(UserScopedModelForm):
    url = forms.URLField(required=False, assume_scheme="https", label="URL")

    class Meta:
        model = Reference
        fields = ["brand", "code", "source", "citation", "url", "label_section"]

    def _post_clean(self):
        super()._post_clean()
        error = self.instance.change_error()
        if error:
            self.add_error(None, ValidationError(error, code="reference_in_use"))


class AssetForm(UserScopedModelForm):
    """Upload an image; it is checked and re-encoded before anything is stored."""

    upload = forms.FileField(
        required=False,
        help_text="PNG, JPEG, WebP or GIF; re-encoded on upload (metadata removed).",
    )

    class Meta:
        model = Asset
        fields = ["brand", "title", "alt_text"]

    clean_image = None

    def scope_choices(self) -> None:
        super().scope_choices()
        if self.instance.pk and "brand" in self.fields:
            self.fields["brand"].disabled = True
        if not self.instance.pk:
            self.fields["upload"].required = True

    def clean_upload(self):
        upload = self.cleaned_data.get("upload")
        if upload:
            self.clean_image = validate_and_reencode(upload)
        return upload

    def _post_clean(self):
        super()._post_clean()
        if not self.instance.pk:
            return
        error = self.instance.change_error()
        if error is None and self.clean_image is not None:
            # A new image for an asset frozen versions show: same refusal.
            self.instance.content_sha256 = self.clean_image.sha256
            error = self.instance.change_error()
        if error:
            self.add_error(None, ValidationError(error, code="asset_in_use"))


class BrandForm(forms.ModelForm):
    class Meta:
        model = Brand
        fields = ["name", "slug", "product_name", "indication", "approval_validity_days",
                  "expiry_notice_days", "requires_form_2253_before_first_use"]
