"""Review cycle time (submission to approval) per brand and per role, and a bar chart.

Cycle time of a version: from its first submission to its approval. Per role: from the
submission of the approving round to that role's approving signature. Computed from rounds
and signatures in two queries.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from .models import Meaning, ReviewRound, Signature
from .roles import REQUIRED_ROLES, Role


def humanize(seconds: float | None) -> str:
    """A duration as people read it: 45 s, 12 min, 5.5 h, 3.2 d."""
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


@dataclass
class CycleStats:
    label: str
    seconds: list[float] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.seconds)

    @property
    def mean_seconds(self) -> float | None:
        return statistics.fmean(self.seconds) if self.seconds else None

    @property
    def median_seconds(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None

    @property
    def mean_display(self) -> str:
        return humanize(self.mean_seconds)

    @property
    def median_display(self) -> str:
        return humanize(self.median_seconds)


@dataclass
class BrandMetrics:
    brand_id: int
    brand: str
    total: CycleStats
    roles: dict[str, CycleStats]


def cycle_times() -> list[BrandMetrics]:
    rounds = list(ReviewRound.objects.select_related("version__module__brand")
                  .order_by("version_id", "number"))
    first_submission: dict[int, object] = {}
    approving: dict[int, ReviewRound] = {}
    for round_ in rounds:
        first_submission.setdefault(round_.version_id, round_.submitted_at)
        if round_.outcome == ReviewRound.Outcome.APPROVED:
            approving[round_.version_id] = round_
    signed = {
        (s.version_id, s.round, s.role): s.signed_at
        for s in Signature.objects.filter(version_id__in=list(approving), meaning=Meaning.APPROVE)
    }
    brands: dict[str, BrandMetrics] = {}
    for version_id, round_ in approving.items():
        brand = round_.version.module.brand
        metrics = brands.setdefault(brand.name, BrandMetrics(
            brand.pk, brand.name, CycleStats("all roles"), {r: CycleStats(Role(r).label) for r in REQUIRED_ROLES}))
        metrics.total.seconds.append(
            (round_.closed_at - first_submission[version_id]).total_seconds())
        for role in REQUIRED_ROLES:
            at = signed.get((version_id, round_.number, role))
            if at is not None:
                metrics.roles[role].seconds.append((at - round_.submitted_at).total_seconds())
    return [brands[name] for name in sorted(brands)]


ROLE_COLOURS = {"total": "#1f4e79", Role.MEDICAL: "#2e86c1", Role.LEGAL: "#7d3c98",
                Role.REGULATORY: "#229954"}


def bar_chart(metrics: list[BrandMetrics], *, width: int = 720) -> dict:
    """Coordinates for a grouped horizontal bar chart (mean durations), drawn by the template
    as inline SVG: no script, no external library."""
    label_width, bar_height, gap, group_gap = 150, 14, 3, 18
    series = ["total", *REQUIRED_ROLES]
    values = []
    for m in metrics:
        values.append([m.total.mean_seconds] + [m.roles[r].mean_seconds for r in REQUIRED_ROLES])
    peak = max((v for row in values for v in row if v is not None), default=0) or 1
    plot_width = width - label_width - 140  # room for the value labels
    groups, y = [], 10
    for m, row in zip(metrics, values, strict=True):
        bars = []
        for name, value in zip(series, row, strict=True):
            length = 0 if value is None else max(1, round(value / peak * plot_width))
            bars.append({"series": name, "colour": ROLE_COLOURS[name], "y": y,
                         "width": length, "value": humanize(value),
                         "label_x": label_width + length + 4,
                         "text_y": y + bar_height - 3})
            y += bar_height + gap
        groups.append({"brand": m.brand, "label_y": bars[0]["text_y"], "bars": bars})
        y += group_gap
    return {"width": width, "height": max(y, 40), "label_width": label_width,
            "bar_height": bar_height, "groups": groups,
            "legend": [{"series": s, "colour": ROLE_COLOURS[s]} for s in series]}
