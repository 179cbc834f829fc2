"""The journey builder's pages and form posts. Thin: forms validate fields, services do
the rest (permissions, model validation, history, optimistic locking).

Plain HTML forms that work without script (post, then 303 back to the map or the
touchpoint's editor); htmx (vendored, `hx-boost`) only makes them swap in place and the
module search answer as one types. A refused edit answers 422 with the form and its
errors, a conflict 409 with the person's own input and what is saved now; both render
the whole page, so nothing depends on script.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from ..health import journey_health
from ..models import Journey, Slot, Stage, Step, Transition
from ..views import render_map, visible_journey
from . import services
from .forms import (
    BindForm,
    ModuleSearchForm,
    SelectorForm,
    StageAddForm,
    StageForm,
    StepAddForm,
    StepForm,
    TransitionForm,
    add_errors,
)


def _editable(request, slug: str) -> Journey:
    journey = visible_journey(request, slug)
    if not services.can_build(request.user, journey):
        raise PermissionDenied("You may not change this journey.")
    return journey


def _to_map(journey: Journey, anchor: str = "") -> HttpResponseRedirect:
    url = reverse("journeys:map", args=[journey.slug]) + (f"#{anchor}" if anchor else "")
    return HttpResponseRedirect(url, status=303)


def _to_step(step: Step, anchor: str = "") -> HttpResponseRedirect:
    url = reverse("journeys:step-edit", args=[step.journey.slug, step.key])
    return HttpResponseRedirect(url + (f"#{anchor}" if anchor else ""), status=303)


def _offset(request) -> int:
    return -1 if request.POST.get("direction") in {"up", "left"} else 1


# --- Stages -------------------------------------------------------------------------------


@login_required
@require_POST
def stage_add(request, slug):
    journey = _editable(request, slug)
    form = StageAddForm(request.POST, journey=journey)
    if form.is_valid():
        try:
            stage = services.add_stage(request.user, journey, **form.cleaned_data)
            return _to_map(journey, f"stage-{stage.pk}")
        except ValidationError as error:
            add_errors(form, error)
    return render_map(request, journey, forms={"stage_add": form}, status=422)


@login_required
def stage_edit(request, slug, pk):
    journey = _editable(request, slug)
    stage = get_object_or_404(Stage.objects.select_related("audience_stage"), journey=journey, pk=pk)
    conflict = None
    if request.method == "POST":
        form = StageForm(request.POST, instance=stage, journey=journey)
        if form.is_valid():
            values = {k: v for k, v in form.cleaned_data.items() if k != "edit_version"}
            try:
                services.update_stage(request.user, stage, values, expected=form.expected)
                return _to_map(journey, f"stage-{stage.pk}")
            except services.EditConflict as error:
                conflict, form = _conflict(error, request, StageForm, journey=journey)
            except ValidationError as error:
                add_errors(form, error)
        status = 409 if conflict else 422
    else:
        form, status = StageForm(instance=stage, journey=journey), 200
    return render(request, "journeys/builder/stage.html", {
        "journey": journey, "stage": stage, "form": form, "conflict": conflict}, status=status)


@login_required
@require_POST
def stage_move(request, slug, pk):
    journey = _editable(request, slug)
    stage = get_object_or_404(Stage, journey=journey, pk=pk)
    services.move_stage(request.user, stage, _offset(request))
    return _to_map(journey, f"stage-{stage.pk}")


@login_required
@require_POST
def stage_remove(request, slug, pk):
    journey = _editable(request, slug)
    stage = get_object_or_404(Stage.objects.select_related("audience_stage"), journey=journey, pk=pk)
    try:
        services.remove_stage(request.user, stage)
    except ValidationError as error:
        return render_map(request, journey, problem=" ".join(error.messages), status=422)
    return _to_map(journey)


# --- Steps --------------------------------------------------------------------------------


@login_required
@require_POST
def step_add(request, slug):
    journey = _editable(request, slug)
    form = StepAddForm(request.POST, journey=journey)
    if form.is_valid():
        try:
            step = services.add_step(request.user, journey, **form.cleaned_data)
            return _to_map(journey, f"step-{step.key}")
        except ValidationError as error:
            add_errors(form, error)
    return render_map(request, journey, forms={"step_add": form}, status=422)


def _step(journey: Journey, key: str) -> Step:
    return get_object_or_404(
        Step.objects.select_related("journey__brand", "journey__audience", "journey__locale",
                                    "stage__audience_stage", "channel"),
        journey=journey, key=key)


@login_required
def step_edit(request, slug, key):
    journey = _editable(request, slug)
    step = _step(journey, key)
    conflict = None
    if request.method == "POST":
        form = StepForm(request.POST, instance=step, journey=journey)
        if form.is_valid():
            values = {k: v for k, v in form.cleaned_data.items() if k != "edit_version"}
            try:
                step = services.update_step(request.user, _step(journey, key), values,
                                            expected=form.expected)
                return _to_step(step, "step-form")
            except services.EditConflict as error:
                conflict, form = _conflict(error, request, StepForm, journey=journey)
            except ValidationError as error:
                add_errors(form, error)
        step = _step(journey, key)  # the form may have changed the instance in memory
        return render_step(request, journey, step, form=form, conflict=conflict,
                           status=409 if conflict else 422)
    return render_step(request, journey, step)


@login_required
@require_POST
def step_move(request, slug, key):
    journey = _editable(request, slug)
    step = _step(journey, key)
    services.move_step(request.user, step, _offset(request))
    return _to_map(journey, f"step-{step.key}")


@login_required
@require_POST
def step_remove(request, slug, key):
    journey = _editable(request, slug)
    step = _step(journey, key)
    try:
        services.remove_step(request.user, step)
    except ValidationError as error:
        return render_map(request, journey, problem=" ".join(error.messages), status=422)
    return _to_map(journey)


def render_step(request, journey: Journey, step: Step, *, form=None, conflict=None,
                bind=None, selector=None, transition=None, search=None, status=200):
    """The touchpoint editor: its fields, its slots with their health, the module search,
    selectors and the paths out of it."""
    query = request.GET.get("q", "") if request.method == "GET" else ""
    search = search or ModuleSearchForm(initial={"q": query})
    found = services.bindable_modules(request.user, step, query)[:services.SEARCH_LIMIT]
    health = journey_health(journey)
    slots = list(step.slots.select_related("module").prefetch_related(
        "selector_stages", "selector_specialties").order_by("order", "id"))
    step_health = health.steps.get(step.pk)
    modules = step_health.modules if step_health else []  # in slot order, as `slots`
    rows = [{"slot": slot, "health": modules[i] if i < len(modules) else None,
             "form": SelectorForm(instance=slot, journey=journey, prefix=f"slot{slot.pk}")
             if slot.is_selector else None} for i, slot in enumerate(slots)]
    transition_form = transition or TransitionForm(journey=journey,
                                                   initial={"from_step": step.pk})
    return render(request, "journeys/builder/step.html", {
        "journey": journey, "step": step, "health": step_health,
        "form": form or StepForm(instance=step, journey=journey), "conflict": conflict,
        "search": search, "query": query, "found": found,
        "bind": bind, "selector": selector or SelectorForm(journey=journey, prefix="new"),
        "rows": rows, "transition_form": transition_form,
        "transitions_out": step.transitions_out.select_related("to_step"),
        "transitions_in": step.transitions_in.select_related("from_step"),
    }, status=status)


@login_required
@require_GET
def module_search(request, slug, key):
    """Modules this touchpoint may bind, by code or title (a fragment for htmx, else the
    editor with the results)."""
    journey = _editable(request, slug)
    step = _step(journey, key)
    if not request.htmx:
        return render_step(request, journey, step)
    query = request.GET.get("q", "")
    found = services.bindable_modules(request.user, step, query)[:services.SEARCH_LIMIT]
    return render(request, "journeys/builder/_results.html", {
        "journey": journey, "step": step, "found": found, "query": query})


# --- Slots --------------------------------------------------------------------------------


@login_required
@require_POST
def slot_add(request, slug, key):
    journey = _editable(request, slug)
    step = _step(journey, key)
    if "module" in request.POST:
        form = BindForm(request.POST, modules=services.bindable_modules(request.user, step))
        if form.is_valid():
            try:
                services.bind_module(request.user, step, form.cleaned_data["module"])
                return _to_step(step, "slots")
            except ValidationError as error:
                add_errors(form, error)
        return render_step(request, journey, step, bind=form, status=422)
    form = SelectorForm(request.POST, journey=journey, prefix="new")
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.add_selector(
                request.user, step, selector_kind=data["selector_kind"],
                priority=data["priority"], required=data["required"],
                stages=data["selector_stages"], specialties=data["selector_specialties"],
                ranking=data["ranking"])
            return _to_step(step, "slots")
        except ValidationError as error:
            add_errors(form, error)
    return render_step(request, journey, step, selector=form, status=422)


def _slot(journey: Journey, pk: int) -> Slot:
    return get_object_or_404(Slot.objects.select_related("step__journey"),
                             step__journey=journey, pk=pk)


@login_required
@require_POST
def slot_edit(request, slug, pk):
    journey = _editable(request, slug)
    slot = _slot(journey, pk)
    form = SelectorForm(request.POST, instance=slot, journey=journey, prefix=f"slot{slot.pk}")
    if slot.is_selector and form.is_valid():
        data = form.cleaned_data
        try:
            services.update_selector(
                request.user, slot, selector_kind=data["selector_kind"],
                priority=data["priority"], required=data["required"],
                stages=data["selector_stages"], specialties=data["selector_specialties"],
                ranking=data["ranking"])
            return _to_step(slot.step, f"slot-{slot.pk}")
        except ValidationError as error:
            add_errors(form, error)
    step = _step(journey, slot.step.key)
    return render_step(request, journey, step, selector=form, status=422)


@login_required
@require_POST
def slot_move(request, slug, pk):
    journey = _editable(request, slug)
    slot = _slot(journey, pk)
    services.move_slot(request.user, slot, _offset(request))
    return _to_step(slot.step, "slots")


@login_required
@require_POST
def slot_remove(request, slug, pk):
    journey = _editable(request, slug)
    slot = _slot(journey, pk)
    services.remove_slot(request.user, slot)
    return _to_step(slot.step, "slots")


# --- Transitions --------------------------------------------------------------------------


@login_required
@require_POST
def transition_add(request, slug):
    journey = _editable(request, slug)
    form = TransitionForm(request.POST, journey=journey)
    back_to_step = request.POST.get("back") == "step"
    if form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items()}
        try:
            services.add_transition(request.user, journey, **data)
            if back_to_step:
                return _to_step(data["from_step"], "paths")
            return _to_map(journey, "paths")
        except ValidationError as error:
            add_errors(form, error)
    from_step = form.cleaned_data.get("from_step") if hasattr(form, "cleaned_data") else None
    if back_to_step and from_step is not None:
        return render_step(request, journey, _step(journey, from_step.key), transition=form,
                           status=422)
    return render_map(request, journey, forms={"transition_add": form}, status=422)


@login_required
@require_POST
def transition_remove(request, slug, pk):
    journey = _editable(request, slug)
    transition = get_object_or_404(Transition.objects.select_related("from_step__journey"),
                                   from_step__journey=journey, pk=pk)
    services.remove_transition(request.user, transition)
    if request.POST.get("back") == "step":
        return _to_step(transition.from_step, "paths")
    return _to_map(journey, "paths")


# --- Conflicts ----------------------------------------------------------------------------


def _conflict(error: services.EditConflict, request, form_class, **kwargs):
    """The person's own input again (now against the current counter, so saving again
    applies it) and, per field they changed, what is saved now."""
    current = error.instance
    data = request.POST.copy()
    data["edit_version"] = str(current.version)
    form = form_class(data, instance=current, **kwargs)
    form.is_valid()
    fresh = form_class(instance=type(current).objects.get(pk=current.pk), **kwargs)
    differences = []
    for name, field in form.fields.items():
        if name == "edit_version":
            continue
        yours = form[name].value()
        saved = fresh[name].value()
        if _text(yours) != _text(saved):
            differences.append({"label": field.label or name, "yours": _shown(field, yours),
                                "saved": _shown(field, saved)})
    return {"message": services.message(error), "differences": differences}, form


def _text(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(sorted(str(v) for v in value))
    return "" if value is None else str(value).replace("\r\n", "\n").strip()


def _shown(field, value) -> str:
    choices = getattr(field, "choices", None)
    if choices is not None and value not in (None, ""):
        for key, label in choices:
            if str(getattr(key, "value", key)) == str(value):
                return str(label)
    return _text(value) or "—"
