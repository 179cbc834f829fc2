"""Forms of the journey builder (and the admin's edit counter).

Field validation here; the model's own `clean` and constraints run in the services
(`full_clean`), as in the admin. Choices are limited to the journey: its audience's
stages, its own stages and touchpoints.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from content.models import ModuleKind
from content.models import Stage as AudienceStage

from ..models import Journey, SelectorRanking, Slot, Stage, Step, Transition

INSIGHTS = ("needs", "emotions", "pain_points", "opportunities")
TEXTAREA = forms.Textarea(attrs={"rows": 2})


class VersionedForm(forms.ModelForm):
    """A form of a journey, stage or step carrying the edit counter it was read at
    (optimistic locking). `expected` is that counter; `conflict` says whether the row was
    saved meanwhile (the admin refuses such a save; the builder's services do too)."""

    edit_version = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=0)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["edit_version"] = self.instance.version

    @property
    def expected(self) -> int | None:
        return self.cleaned_data.get("edit_version")


class AdminVersionedForm(VersionedForm):
    """The admin's forms: a save over someone else's newer save is refused with the same
    words as the builder's conflict."""

    def clean(self):
        data = super().clean()
        expected = data.get("edit_version")
        if self.instance.pk and expected is not None:
            current = type(self.instance).objects.filter(pk=self.instance.pk).values_list(
                "version", flat=True).first()
            if current is not None and current != expected:
                raise ValidationError(
                    "Someone saved this record while you were editing it; nothing was "
                    "overwritten. Open it again (your input is still in this form) and "
                    "re-apply your changes.", code="edit_conflict")
        return data


class StageAddForm(forms.ModelForm):
    class Meta:
        model = Stage
        fields = ("audience_stage",)
        labels = {"audience_stage": "Stage"}

    def __init__(self, *args, journey: Journey, **kwargs):
        super().__init__(*args, **kwargs)
        used = journey.stages.values("audience_stage")
        self.fields["audience_stage"].queryset = AudienceStage.objects.filter(
            audience=journey.audience_id).exclude(pk__in=used).order_by("order", "name")
        self.fields["audience_stage"].empty_label = "Choose a stage"


class StageForm(VersionedForm):
    class Meta:
        model = Stage
        fields = ("audience_stage", *INSIGHTS)
        labels = {"audience_stage": "Stage"}
        widgets = dict.fromkeys(INSIGHTS, TEXTAREA)

    def __init__(self, *args, journey: Journey, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["audience_stage"].queryset = AudienceStage.objects.filter(
            audience=journey.audience_id).order_by("order", "name")


STEP_FIELDS = ("stage", "key", "name", "channel", "owner_function", "purpose", "layout",
               "timing", "delay_days", "decision_moment", *INSIGHTS)


class StepForm(VersionedForm):
    class Meta:
        model = Step
        fields = STEP_FIELDS
        labels = {"owner_function": "Owner", "key": "Key", "delay_days": "Delay (days)"}
        widgets = dict.fromkeys(INSIGHTS, TEXTAREA)

    def __init__(self, *args, journey: Journey, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["stage"].queryset = journey.stages.select_related(
            "audience_stage").order_by("order", "id")
        self.fields["stage"].empty_label = None


class StepAddForm(forms.ModelForm):
    class Meta:
        model = Step
        fields = ("stage", "name", "key", "channel", "owner_function")
        labels = {"owner_function": "Owner", "name": "Touchpoint", "key": "Key"}
        help_texts = {"key": "Lower-case letters, digits, dashes; unique in the journey"}

    def __init__(self, *args, journey: Journey, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["stage"].queryset = journey.stages.select_related(
            "audience_stage").order_by("order", "id")
        self.fields["stage"].empty_label = "Choose a stage"


class ModuleSearchForm(forms.Form):
    q = forms.CharField(label="Find a module by code or title", required=False, max_length=100)


class BindForm(forms.Form):
    module = forms.ModelChoiceField(queryset=None, label="Module")

    def __init__(self, *args, modules, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["module"].queryset = modules


SELECTOR_KINDS = [(k, label) for k, label in ModuleKind.choices if k != ModuleKind.FOOTER]


class SelectorForm(forms.ModelForm):
    selector_kind = forms.ChoiceField(choices=SELECTOR_KINDS, label="Module kind")
    ranking = forms.ChoiceField(
        choices=SelectorRanking.choices, required=False, label="Order candidates by",
        help_text="Engagement: the recipient's opens, clicks and downloads of content with "
                  "the same stages and specialties rank the approved candidates (next-best "
                  "content); the manifest says why.")

    class Meta:
        model = Slot
        fields = ("selector_kind", "priority", "required", "ranking", "selector_stages",
                  "selector_specialties")
        labels = {"selector_stages": "Tagged with stages",
                  "selector_specialties": "Tagged with specialties"}

    def __init__(self, *args, journey: Journey, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["selector_stages"].queryset = AudienceStage.objects.filter(
            audience=journey.audience_id)
        for name in ("selector_stages", "selector_specialties"):
            self.fields[name].widget.attrs["size"] = 4

    def clean_ranking(self) -> str:
        """Not posted (an older form, a script): the slot keeps its ranking."""
        return self.cleaned_data.get("ranking") or self.instance.ranking or SelectorRanking.DEFAULT


class TransitionForm(forms.ModelForm):
    class Meta:
        model = Transition
        fields = ("from_step", "event_type", "threshold", "days", "to_step", "pause", "label")
        labels = {"from_step": "From", "to_step": "To", "event_type": "Event",
                  "pause": "Pause outreach instead"}

    def __init__(self, *args, journey: Journey, **kwargs):
        super().__init__(*args, **kwargs)
        steps = Step.objects.filter(journey=journey).order_by("stage__order", "order", "id")
        self.fields["from_step"].queryset = steps
        self.fields["to_step"].queryset = steps
        self.fields["from_step"].empty_label = "Choose a touchpoint"
        self.fields["to_step"].empty_label = "—"
        self.fields["from_step"].label_from_instance = _step_label
        self.fields["to_step"].label_from_instance = _step_label


def _step_label(step: Step) -> str:
    return f"{step.name} ({step.key})"


def add_errors(form: forms.BaseForm, error: ValidationError) -> None:
    """A service's ValidationError onto the form: per field where the form has the
    field, else above the form."""
    if hasattr(error, "error_dict"):
        for name, errors in error.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, error)
