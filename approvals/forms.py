"""Forms of the reviewer screens: they only check shape; the rules live in the services."""

from django import forms

from .models import Comment, Meaning
from .roles import Role


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
