"""Forms of the reviewer screens: they only check shape; the rules live in the services."""

from django import forms

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
    decision = forms.ChoiceField(
        choices=[(Meaning.APPROVE, "Approve"), (Meaning.REQUEST_CHANGES, "Request changes")],
        widget=forms.RadioSelect, label="Decision",
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
