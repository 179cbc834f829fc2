"""Reads for the journey pages: the map grid, module states per slot, preview assemblies."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Prefetch
from django.utils import timezone

from content.deliverability import health
from content.models import LOCKED_STATES, Channel, ModuleVersion
from content.permissions import is_reviewer
from content.preview import SAMPLE_RECIPIENT

from .assembly import AssemblyResult, load_context
from .models import EventType, Journey, Layout, Slot, Stage, Step, Transition


def can_preview(user) -> bool:
    """Staff and MLR reviewers may preview steps."""
    if not user.is_authenticated:
        return False
    return user.is_staff or is_reviewer(user)


def journeys_for_index():
    return (Journey.objects.select_related("brand", "audience", "locale")
            .prefetch_related("jurisdictions",
                              Prefetch("steps", queryset=Step.objects.select_related("channel")
                                       .order_by("stage__order", "order", "id")))
            .order_by("brand__name", "name"))


@dataclass
class ModuleCell:
    code: str
    label: str
    state: str
    status: str  # ok | expiring | blocked | pending | selector
    expires_at: object = None
    note: str = ""


@dataclass
class StepCell:
    step: Step
    modules: list[ModuleCell] = field(default_factory=list)
    transitions_out: list[Transition] = field(default_factory=list)
    transitions_in: list[Transition] = field(default_factory=list)
    column: int = 0
    row: int = 0


def journey_map(journey: Journey) -> dict:
    """Everything the map page shows, in a fixed number of queries."""
    now = timezone.now()
    stages = list(Stage.objects.filter(journey=journey).select_related("audience_stage")
                  .order_by("order", "id"))
    steps = list(Step.objects.filter(journey=journey).select_related("channel")
                 .prefetch_related(Prefetch("slots", queryset=Slot.objects.select_related("module")
                                            .order_by("order", "id")))
                 .order_by("stage__order", "order", "id"))
    transitions = list(Transition.objects.filter(from_step__journey=journey)
                       .select_related("from_step", "to_step"))
    module_ids = {slot.module_id for step in steps for slot in step.slots.all() if slot.module_id}
    latest: dict[int, tuple] = {}
    newest_any: dict[int, tuple] = {}
    for module_id, number, state, valid_from, expires_at in (
        ModuleVersion.objects.filter(module_id__in=module_ids).order_by("module_id", "-number")
        .values_list("module_id", "number", "state", "valid_from", "expires_at")
    ):
        newest_any.setdefault(module_id, (number, state, valid_from, expires_at))
        if state in LOCKED_STATES:
            latest.setdefault(module_id, (number, state, valid_from, expires_at))
    # Warn as early as the expiry mails do: the brand's notice period, not the site's.
    notice_days = journey.brand.effective_notice_days
    cells: dict[int, StepCell] = {}
    by_stage: dict[int, list[StepCell]] = defaultdict(list)
    stage_index = {s.pk: i for i, s in enumerate(stages)}
    for step in steps:
        cell = StepCell(step=step, column=stage_index.get(step.stage_id, 0))
        for slot in step.slots.all():
            if slot.module_id:
                number, state, valid_from, expires_at = latest.get(slot.module_id) or \
                    newest_any.get(slot.module_id, (None, "none", None, None))
                cell.modules.append(ModuleCell(
                    code=slot.module.code,
                    label=f"{slot.module.code} v{number}" if number else slot.module.code,
                    state=state.replace("_", " "),
                    status=health(state=state, valid_from=valid_from, expires_at=expires_at,
                                  now=now, notice_days=notice_days),
                    expires_at=expires_at))
            else:
                cell.modules.append(ModuleCell(
                    code="", label=f"selector: {slot.get_selector_kind_display()}",
                    state="picked per recipient", status="selector",
                    note=f"priority {slot.priority}" + ("" if slot.required else ", optional")))
        cell.row = len(by_stage[cell.column])
        by_stage[cell.column].append(cell)
        cells[step.pk] = cell
    for transition in transitions:
        if transition.from_step_id in cells:
            cells[transition.from_step_id].transitions_out.append(transition)
        if transition.to_step_id in cells:
            cells[transition.to_step_id].transitions_in.append(transition)
    columns = [{"stage": stage, "cells": by_stage.get(i, [])} for i, stage in enumerate(stages)]
    return {"stages": stages, "columns": columns, "cells": cells,
            "transitions": transitions, "diagram": _diagram(stages, cells, transitions)}


# Geometry of the transition diagram (server-rendered SVG, no script needed).
NODE_W, NODE_H, COL_W, ROW_H, PAD, HEAD = 180, 46, 240, 104, 20, 50


def _short(transition: Transition) -> str:
    """A label that fits between two columns: 'ignored ×2', 'silent 30 d'."""
    if transition.event_type == EventType.NO_ENGAGEMENT_FOR:
        return f"silent {transition.days} d"
    return transition.describe_event()


def _diagram(stages, cells, transitions) -> dict:
    """Nodes per stage column and edges between them; labels are short event names."""
    rows = max((c.row for c in cells.values()), default=0) + 1
    width = PAD * 2 + COL_W * max(len(stages), 1)
    height = PAD + HEAD + ROW_H * rows + 20
    nodes, pos = [], {}
    for cell in cells.values():
        x = PAD + cell.column * COL_W
        y = PAD + HEAD + cell.row * ROW_H
        pos[cell.step.pk] = (x, y, cell.column, cell.row)
        nodes.append({"x": x, "y": y, "w": NODE_W, "h": NODE_H, "key": cell.step.key,
                      "name": _fit(cell.step.name, 24), "channel": cell.step.channel.code,
                      "tx": x + 8, "ty1": y + 18, "ty2": y + 36})
    headers = [{"x": PAD + i * COL_W, "y": PAD + 14, "name": str(s)} for i, s in enumerate(stages)]
    edges = []
    stubs: dict[int, int] = {}
    for t in sorted(transitions, key=lambda t: (t.from_step_id, t.pk)):
        if t.from_step_id not in pos:
            continue
        x1, y1, c1, r1 = pos[t.from_step_id]
        if t.pause or t.to_step_id not in pos:
            # A short red stub above the node's right end: "silent 30 d → pause".
            n = stubs.get(t.from_step_id, 0)
            stubs[t.from_step_id] = n + 1
            sx = x1 + NODE_W - 12 - 14 * n
            path = f"M{sx},{y1} L{sx},{y1 - 14}"
            edges.append({"d": path, "label": f"{_short(t)} → pause", "lx": sx + 4,
                          "ly": y1 - 16, "kind": "pause", "anchor": "end"})
            continue
        x2, y2, c2, r2 = pos[t.to_step_id]
        if c2 > c1:  # forward: right side to left side
            sx, sy, ex, ey = x1 + NODE_W, y1 + NODE_H / 2, x2, y2 + NODE_H / 2
            bend = (ex - sx) / 2
            path = (f"M{sx:.0f},{sy:.0f} C{sx + bend:.0f},{sy:.0f} {ex - bend:.0f},{ey:.0f} "
                    f"{ex - 6:.0f},{ey:.0f}")
            lx, ly, anchor = sx + 6, sy - 5 if ey <= sy else sy + 14, "start"
        elif c2 == c1 and r2 > r1:  # same stage, further down
            sx, sy, ex, ey = x1 + 30, y1 + NODE_H, x2 + 30, y2
            path = f"M{sx:.0f},{sy:.0f} L{ex:.0f},{ey - 6:.0f}"
            lx, ly, anchor = sx + 6, (sy + ey) / 2 + 4, "start"
        else:  # backwards or upwards: loop under the source and come back from below
            sx, sy = x1 + NODE_W / 2, y1 + NODE_H
            ex, ey = x2 + NODE_W - 30, y2 + NODE_H
            low = max(sy, ey) + 30
            path = (f"M{sx:.0f},{sy:.0f} C{sx:.0f},{low:.0f} {ex:.0f},{low:.0f} "
                    f"{ex:.0f},{ey + 6:.0f}")
            lx, ly, anchor = (sx + ex) / 2, low + 12, "middle"
        edges.append({"d": path, "label": _short(t), "lx": round(lx), "ly": round(ly),
                      "kind": "move", "anchor": anchor})
    return {"width": width, "height": height, "nodes": nodes, "edges": edges, "headers": headers}


def _fit(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1].rstrip() + "…"


def sample_recipient() -> dict:
    """The content preview's sample reader, consenting to every channel of the taxonomy,
    with a sample unsubscribe link (every email needs the reader's own)."""
    return {"id": "sample-recipient", **SAMPLE_RECIPIENT,
            "consent": dict.fromkeys(Channel.objects.values_list("code", flat=True), True),
            "unsubscribe_url": "https://unsubscribe.example.com/sample-recipient"}


def preview_step(step: Step, *, jurisdiction: str, locale: str) -> dict[str, AssemblyResult]:
    """The step for the sample recipient in email and portal form (one read for both)."""
    results = {}
    for layout in (Layout.EMAIL, Layout.PORTAL):
        ctx = load_context(step, channel=step.channel.code, jurisdiction=jurisdiction,
                           locale=locale, layout=layout)
        results[layout] = ctx.assemble(sample_recipient())
    return results
