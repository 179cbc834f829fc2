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
from .tokens import RECIPIENT_FIELDS
from .versioning import open_version_message

# Human labels for the version fields (the model's names are for code).
VERSION_LABELS = {
    "locale": "Language (locale)",
    "subject": "Email subject",
    "body_html": "Text",
    "body_text": "Plain-text version",
    "asset": "Image",
    "token_fallbacks": "Fallbacks for personalisation",
    "audiences": "Audiences",
    "specialties": "Specialties",
    "stages": "Journey stages",
    "jurisdictions": "Markets",
    "channels": "Channels",
    "citations": "References",
    "requires": "Must travel with",
    "excludes": "Never combined with",
    "valid_from": "Valid from",
}
VERSION_HELP = {
    "body_html": "Headings, lists, bold, italic and links; “Footnote” adds a numbered marker "
                 "bound to a reference (and adds it to References); “Personalise” inserts an "
                 "allowed recipient field. Saved through the sanitiser.",
    "body_text": "Left empty, it is derived from the text.",
    "citations": "The references behind the claims; numbered in the order of their first "
                 "footnote.",
    "stages": "Only stages of the audiences tagged above.",
    "specialties": "Only specialties of the audiences tagged above.",
}


class BodyEditor(forms.Textarea):
    """The body's rich-text editor: django-prose-editor's ProseMirror build with Tessera's
    footnote and personalisation extensions (content/static/content/editor.js).

    Without JavaScript it is the plain textarea; either way the server sanitises."""

    def __init__(self, *, references=(), attrs=None):
        import json

        attrs = {"rows": 12, "cols": 90, "data-tessera-editor": "", **(attrs or {})}
        attrs["data-tessera-tokens"] = json.dumps(list(RECIPIENT_FIELDS))
        attrs["data-tessera-references"] = json.dumps([
            {"pk": ref.pk, "code": ref.code, "brand": ref.brand_id, "label": str(ref)}
            for ref in references])
        super().__init__(attrs=attrs)

    @property
    def media(self):
        return forms.Media(
            css={"all": ["django_prose_editor/material-icons.css",
                         "django_prose_editor/editor.css", "django_prose_editor/overrides.css",
                         "content/editor.css"]},
            js=[forms.Script("content/editor.js", type="module")],
        )

    def use_required_attribute(self, initial):
        return False  # the editor hides the textarea; the server says what is missing


def label_version_fields(form, brand_id=None) -> None:
    """Human labels, short help and the rich-text body on a version form."""
    for name, field in form.fields.items():
        if name in VERSION_LABELS:
            field.label = VERSION_LABELS[name]
        if name in VERSION_HELP:
            field.help_text = VERSION_HELP[name]
    if "body_html" in form.fields and not form.fields["body_html"].disabled:
        references = authorable(Reference.objects.all(), form.user) if form.user else Reference.objects.none()
        if brand_id is not None:
            references = references.filter(brand_id=brand_id)
        form.fields["body_html"].widget = BodyEditor(references=references.order_by("code"))


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
            brands = authored_brands(self.user)
            self.fields["brand"].queryset = brands
            if not self.instance.pk:
                only = list(brands.values_list("pk", flat=True)[:2])
                if len(only) == 1:  # a one-brand author: nothing to choose
                    self.fields["brand"].initial = only[0]
                    self.fields["brand"].empty_label = None


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
        label_version_fields(self, self.instance.module.brand_id if self.instance.module_id else None)

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk:
            stored = ModuleVersion.objects.filter(pk=self.instance.pk).values_list("state", flat=True).first()
            if stored is not None and stored not in EDITABLE_STATES:
                raise ValidationError(
                    f"{self.instance} is {stored.replace('_', ' ')}: its content cannot change. "
                    + ("Wait for the reviewers' decision, or recall the submission."
                       if stored == "in_review" else
                       "Use the “New version” action to start a draft."), code="locked")
        module = cleaned.get("module") or (self.instance.module if self.instance.pk else None)
        if module is not None and not self.instance.pk:
            open_version = module.versions.exclude(state__in=LOCKED_STATES).order_by("-number").first()
            if open_version is not None:
                raise ValidationError(open_version_message(open_version), code="open_version")
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


class FirstVersionForm(UserScopedModelForm):
    """The first version, written on the module's add page: text, references and the tags
    review needs; the rest on the version's own page."""

    class Meta:
        model = ModuleVersion
        fields = ["locale", "subject", "body_html", "citations", "audiences", "jurisdictions",
                  "channels"]

    sanitise_report = None

    def scope_choices(self) -> None:
        fields = self.fields
        fields["citations"].queryset = authorable(Reference.objects.all(), self.user)
        if not self.instance.pk and "locale" in fields and fields["locale"].initial is None:
            from .models import Locale

            first = Locale.objects.filter(code="en").values_list("pk", flat=True).first()
            fields["locale"].initial = first
        label_version_fields(self)

    def clean(self):
        cleaned = super().clean()
        module = getattr(self.instance, "module", None)
        brand_id = getattr(module, "brand_id", None)
        if brand_id is not None:
            for ref in cleaned.get("citations") or ():
                if ref.brand_id != brand_id:
                    self.add_error("citations", f"{ref.code} is a reference of {ref.brand}, not "
                                                f"of {module.brand}.")
        return cleaned

    def _post_clean(self):
        super()._post_clean()
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
