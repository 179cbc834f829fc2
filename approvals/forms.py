"""Forms of the reviewer screens: they only check shape; the rules live in the services."""

from datetime import timedelta

import django_filters
from django import forms
from django.utils import timezone

from . import errors
from .errors import ApprovalError
from .models import Comment, Meaning
from .roles import Role

# The code a signing form refuses with, by the first field at fault (in the form's order):
# the same codes the services use, so a client branches the same way whichever layer refused.
FIELD_CODES = {
    "username": errors.CREDENTIALS_REQUIRED, "password": errors.CREDENTIALS_REQUIRED,
    "role": errors.UNKNOWN_ROLE, "decision": errors.UNKNOWN_DECISION,
    "comment": errors.TOO_LONG, "reason": errors.TOO_LONG,
}


class SigningFields(forms.Form):
    """User id (when this signing needs it) and password: re-entered at every signature."""

    username = forms.CharField(label="User id", required=False, max_length=150,
                               widget=forms.TextInput(attrs={"autocomplete": "username"}))
    password = forms.CharField(label="Password", strip=False, max_length=1024,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))

    def __init__(self, *args, needs_username: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.needs_username = needs_username
        if needs_username:
            self.fields["username"].required = True
        else:
            self.fields["username"].widget = forms.HiddenInput()

    def refusal(self) -> ApprovalError:
        """The errors of a form that did not validate, as one refusal: the code of the first
        field at fault (`FIELD_CODES`; `invalid_form` otherwise) and every field's message.
        Call after `is_valid()` returned False; the screens audit it like a service refusal."""
        at_fault = [name for name in self.fields if name in self.errors]
        at_fault += [name for name in self.errors if name not in at_fault]  # non-field errors
        first = at_fault[0] if at_fault else ""
        code = FIELD_CODES.get(first, errors.INVALID_FORM)
        if code == errors.CREDENTIALS_REQUIRED and self.data.get(first):
            code = errors.INVALID_FORM  # typed but malformed (e.g. over the length limit)
        return ApprovalError(code, "Check the highlighted fields: " + "; ".join(
            f"{self.fields[name].label if name in self.fields else name}: "
            f"{' '.join(self.errors[name])}" for name in at_fault))

    @property
    def fields_at_fault(self) -> list[str]:
        return [name for name in self.errors]


class DecisionForm(SigningFields):
    role = forms.ChoiceField(choices=Role.choices, label="Deciding as")
    # No default: the reviewer chooses; an unchosen decision is a form error (unknown_decision).
    decision = forms.ChoiceField(
        choices=[(Meaning.APPROVE, "Approve"), (Meaning.REQUEST_CHANGES, "Request changes")],
        widget=forms.RadioSelect, label="Decision",
        error_messages={"required": "Choose Approve or Request changes."},
    )
    comment = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3}),
                              label="Comment (required to request changes)")
    expected_sha256 = forms.CharField(widget=forms.HiddenInput, max_length=64)

    field_order = ["role", "decision", "comment", "username", "password", "expected_sha256"]

    def __init__(self, *args, roles=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [(r, Role(r).label) for r in roles]


class WithdrawForm(SigningFields):
    role = forms.ChoiceField(choices=Role.choices, label="Withdrawing as")
    reason = forms.CharField(max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 3}),
                             label="Reason (required)")

    field_order = ["role", "reason", "username", "password"]

    def __init__(self, *args, roles=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [(r, Role(r).label) for r in roles]


class CommentForm(forms.Form):
    anchor = forms.ChoiceField(choices=Comment.Anchor.choices, initial=Comment.Anchor.GENERAL,
                               label="About")
    body = forms.CharField(max_length=5000, widget=forms.Textarea(attrs={"rows": 3}),
                           label="Comment")


# --- annotations -------------------------------------------------------------------------

TEXT_BLOCKS = [("body", "Body"), ("subject", "Subject"), ("text", "Plain-text version")]


class AnnotationForm(forms.Form):
    """An anchored annotation. `target` says what it is about: "text" (a quote of the
    rendered preview: exact + prefix/suffix + block, captured by review/annotate.js from a
    selection, or typed), "reference:<id>", "tag:<kind>:<code>", "companion:<code>" or
    "image". The anchor's rules (the quote must occur, the reference must be cited…) are
    `approvals.annotations.clean_anchor`'s."""

    target = forms.ChoiceField(label="About", choices=[("text", "Selected text")])
    exact = forms.CharField(label="Quoted text", required=False, max_length=1000,
                            widget=forms.Textarea(attrs={"rows": 2}))
    prefix = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)
    suffix = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)
    block = forms.ChoiceField(choices=TEXT_BLOCKS, required=False, initial="body",
                              label="In")
    role = forms.ChoiceField(choices=Role.choices, required=False, label="As")
    body = forms.CharField(label="Annotation", max_length=5000,
                           widget=forms.Textarea(attrs={"rows": 3}),
                           error_messages={"required": "Write the annotation."})

    def __init__(self, *args, targets=(), roles=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = [("text", "Selected text"), *targets]
        self.fields["role"].choices = [(r, Role(r).label) for r in roles]

    def kind_and_anchor(self) -> tuple[str, dict]:
        """(kind, anchor) for `annotations.create_annotation`, from the cleaned data."""
        data = self.cleaned_data
        target = data["target"]
        if target == "text":
            return "text", {"exact": data["exact"], "prefix": data["prefix"],
                            "suffix": data["suffix"], "block": data["block"] or "body"}
        kind, _, rest = target.partition(":")
        if kind == "reference":
            return "reference", {"reference_id": int(rest)}
        if kind == "tag":
            return "tag", {"tag": rest}
        if kind == "companion":
            return "companion", {"module_code": rest}
        return "image", {}


class AnnotationNoteForm(forms.Form):
    note = forms.CharField(label="Note (optional)", required=False, max_length=2000)


# --- inbox and approved list -------------------------------------------------------------

INBOX_SORTS = [
    ("due", "Due date (soonest first)"), ("-due", "Due date (latest first)"),
    ("submitted", "Submitted (oldest first)"), ("-submitted", "Submitted (newest first)"),
    ("code", "Module code"), ("brand", "Brand"),
]
DUE_CHOICES = [("", "Any time"), ("today", "Due today or before"),
               ("3", "Due within 3 days"), ("7", "Due within 7 days")]


class InboxFilterForm(forms.Form):
    """Filters of the inbox's review lists (every field optional; bad values are ignored
    as the form's errors, never a 500)."""

    q = forms.CharField(label="Search code or title", required=False, max_length=100)
    brand = forms.TypedChoiceField(label="Brand", required=False, coerce=int, empty_value=None)
    role = forms.ChoiceField(label="Waiting for", required=False,
                             choices=[("", "Any role"), *Role.choices])
    due = forms.ChoiceField(label="Due", required=False, choices=DUE_CHOICES)
    overdue = forms.BooleanField(label="Overdue only", required=False)
    sort = forms.ChoiceField(label="Sort by", required=False, choices=INBOX_SORTS)

    def __init__(self, *args, brands=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["brand"].choices = [("", "All brands"), *[(b.pk, b.name) for b in brands]]

    def apply(self, rows, *, now=None):
        """Filter and sort inbox rows (`selectors.InboxRow`)."""
        now = now or timezone.now()
        data = {}
        if self.is_bound:
            self.is_valid()  # a junk value drops that filter only; the valid ones still apply
            data = getattr(self, "cleaned_data", {})
        q = (data.get("q") or "").strip().lower()
        if q:
            rows = [r for r in rows if q in r.version.module.code.lower()
                    or q in r.version.module.title.lower()]
        if data.get("brand"):
            rows = [r for r in rows if r.version.module.brand_id == data["brand"]]
        if data.get("role"):
            rows = [r for r in rows if data["role"] in r.pending_roles]
        if data.get("due"):
            today_end = timezone.localtime(now).replace(hour=23, minute=59, second=59)
            limit = today_end if data["due"] == "today" else now + timedelta(days=int(data["due"]))
            rows = [r for r in rows if r.round.due_at <= limit]
        if data.get("overdue"):
            rows = [r for r in rows if r.round.due_at < now]
        sort = data.get("sort") or "due"
        key = {
            "due": lambda r: r.round.due_at, "submitted": lambda r: r.round.submitted_at,
            "code": lambda r: r.version.module.code, "brand": lambda r: (
                r.version.module.brand.name, r.round.due_at),
        }[sort.lstrip("-")]
        return sorted(rows, key=key, reverse=sort.startswith("-"))


class ApprovedFilter(django_filters.FilterSet):
    """The approved list: brand, expiry window, search, order."""

    q = django_filters.CharFilter(label="Search code or title", method="search", max_length=100)
    brand = django_filters.ModelChoiceFilter(field_name="module__brand", label="Brand",
                                             empty_label="All brands", queryset=None)
    expires = django_filters.ChoiceFilter(
        label="Expires", method="expiring", empty_label="Any time",
        choices=[("30", "Within 30 days"), ("60", "Within 60 days"), ("90", "Within 90 days")])
    sort = django_filters.OrderingFilter(
        label="Sort by", empty_label=None,
        fields=(("expires_at", "expires"), ("approved_at", "approved"), ("module__code", "code")),
        field_labels={"expires": "Expiry (soonest first)", "-expires": "Expiry (latest first)",
                      "approved": "Approved (oldest first)", "-approved": "Approved (newest first)",
                      "code": "Module code", "-code": "Module code (Z-A)"},
    )

    def __init__(self, *args, brands=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["brand"].queryset = brands
        self.form.fields["brand"].queryset = brands

    def search(self, queryset, name, value):
        from django.db.models import Q

        value = value.strip()
        return queryset.filter(Q(module__code__icontains=value)
                               | Q(module__title__icontains=value)) if value else queryset

    def expiring(self, queryset, name, value):
        now = timezone.now()
        return queryset.filter(expires_at__gte=now, expires_at__lte=now + timedelta(days=int(value)))
