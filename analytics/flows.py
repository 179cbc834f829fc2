"""The flow view: the actual moves of recipients laid over the designed map
(docs/analytics.md, "Flow view").

A recipient's *moves* are the consecutive pairs of their path (steps by first arrival), plus
`start → first step`. A flow is the number of recipients who made a move; it is *designed*
when a transition of the map leads from one step to the other (or, for `start → X`, when X
is an entry step), else *off-path*. Unlike coherence (which counts an incoherent recipient
once, under their first off-path move), every move of every path is counted here.

`flow_rows` gives the suppressed table (also the CSV and the API); `flow_picture` lays the
map out for a server-side SVG: one column per stage, one box per step, the designed
transitions as thin dashed lines, the shown flows as curves whose width grows with the
number of recipients. Flows of fewer than TESSERA_MIN_COHORT recipients are not drawn (the
table shows them as "< 5").
"""

from __future__ import annotations

from collections import Counter

from . import privacy

START = "start"
COLUMN, ROW, BOX_W, BOX_H, MARGIN, TOP = 230, 92, 120, 40, 20, 64
MAX_WIDTH = 24.0


def flows_of(paths: dict, design) -> Counter:
    """(from step id or None for the start, to step id) -> recipients who made that move."""
    moves: Counter = Counter()
    for visits in paths.values():
        steps = [v.step for v in visits]
        if not steps:
            continue
        seen = {(None, steps[0]), *zip(steps, steps[1:], strict=False)}
        moves.update(seen)
    return moves


def flow_rows(moves: Counter, design) -> list[dict]:
    """Every move made and every designed transition (0 when nobody took it), in map order;
    suppressed below k. Suppressed rows are not ordered by their hidden size."""
    order = {s: i for i, (s, *_) in enumerate(design.steps)}
    key = design.key_of
    entry = design.entry_steps
    pairs = set(moves) | set(design.moves) | {(None, s) for s in entry}
    pairs = {(a, b) for a, b in pairs if b in key and (a is None or a in key)}
    rows = []
    for a, b in sorted(pairs, key=lambda p: (-1 if p[0] is None else order[p[0]], order[p[1]])):
        designed = (b in entry) if a is None else (a, b) in design.moves
        rows.append({"from": START if a is None else key[a], "to": key[b],
                     "recipients": privacy.count(moves.get((a, b), 0)),
                     "designed": designed})
    return rows


def flow_picture(rows: list[dict], design, reached: dict[str, object]) -> dict:
    """Geometry of the SVG (pixels): boxes, designed links, drawn flows."""
    columns = {stage: i for i, (stage, _) in enumerate(design.stages)}
    stage_names = dict(design.stages)
    place: dict[str, tuple[float, float]] = {}
    per_column: Counter = Counter()
    for _, key, stage, _ in design.steps:
        col = columns.get(stage, 0)
        place[key] = (MARGIN + col * COLUMN, MARGIN + TOP + per_column[col] * ROW)
        per_column[col] += 1
    width = MARGIN * 2 + max(1, len(columns)) * COLUMN - (COLUMN - BOX_W) + 60
    height = MARGIN + TOP + max([1, *per_column.values()]) * ROW
    nodes = [{"key": key, "x": place[key][0], "y": place[key][1], "w": BOX_W, "h": BOX_H,
              "reached": reached.get(key, 0), "tx": place[key][0] + 8,
              "ty1": place[key][1] + 16, "ty2": place[key][1] + 32}
             for _, key, _, _ in design.steps]
    headers = [{"x": MARGIN + i * COLUMN, "y": MARGIN + 12, "name": stage_names[s]}
               for s, i in columns.items()]

    def curve(a: str, b: str) -> tuple[str, float, float]:
        """The path of a move and where its label goes: to the next column an S-curve
        between the boxes; further forward a dip under the row; within a column a bulge
        to the right; backwards an arc over the boxes."""
        ax, ay = place[a]
        bx, by = place[b]
        if bx > ax:
            x1, y1, x2, y2 = ax + BOX_W, ay + BOX_H / 2, bx, by + BOX_H / 2
            if bx - ax <= COLUMN:
                mid = (x1 + x2) / 2
                return (f"M{x1:.0f},{y1:.0f} C{mid:.0f},{y1:.0f} {mid:.0f},{y2:.0f} "
                        f"{x2:.0f},{y2:.0f}", mid, (y1 + y2) / 2)
            dip = max(y1, y2) + ROW * 0.75
            return (f"M{x1:.0f},{y1:.0f} C{x1 + 40:.0f},{dip:.0f} {x2 - 40:.0f},{dip:.0f} "
                    f"{x2:.0f},{y2:.0f}", (x1 + x2) / 2, dip - 6)
        if bx == ax:
            x, y1, y2 = ax + BOX_W, ay + BOX_H / 2, by + BOX_H / 2
            bulge = x + 36 + abs(y2 - y1) / 8
            return (f"M{x:.0f},{y1:.0f} C{bulge:.0f},{y1:.0f} {bulge:.0f},{y2:.0f} {x:.0f},{y2:.0f}",
                    bulge - 6, (y1 + y2) / 2)
        x1, x2, y1, y2 = ax + BOX_W / 2, bx + BOX_W / 2, ay, by
        top = min(y1, y2) - TOP / 2
        return (f"M{x1:.0f},{y1:.0f} C{x1:.0f},{top:.0f} {x2:.0f},{top:.0f} {x2:.0f},{y2:.0f}",
                (x1 + x2) / 2, top + 14)

    designed = []
    for row in rows:
        if row["from"] != START and row["designed"]:
            designed.append({"d": curve(row["from"], row["to"])[0]})
    drawn = [r for r in rows if r["from"] != START and isinstance(r["recipients"], int)
             and r["recipients"] > 0]
    biggest = max([r["recipients"] for r in drawn], default=1)
    flows = []
    for row in drawn:
        d, lx, ly = curve(row["from"], row["to"])
        flows.append({"d": d, "width": round(2 + (MAX_WIDTH - 2) * row["recipients"] / biggest, 1),
                      "off_path": not row["designed"], "label": row["recipients"],
                      "lx": round(lx), "ly": round(ly - 4),
                      "title": f"{row['from']} → {row['to']}: {row['recipients']} recipients"
                               f"{'' if row['designed'] else ' (off the designed paths)'}"})
    flows.sort(key=lambda f: -f["width"])  # thick first, thin drawn on top
    return {"width": width, "height": height, "nodes": nodes, "headers": headers,
            "designed": designed, "flows": flows, "min_cohort": privacy.min_cohort()}
