"""Frequency caps: at most N touchpoints on a channel (of a purpose) per recipient per
period, across all journeys of a brand — e.g. ≤ 2 promotional emails in 7 days.

A recipient is their pseudonym, the same in every journey (one key hashes every id), so a
cap counts what every journey of the brand planned or sent them. What counts: touchpoints
due, leased or delivered (`CAPPED_STATUSES`). A touchpoint over a cap is postponed to the
moment the oldest counted one leaves the period, never dropped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Cap:
    id: int
    brand_id: int | None
    channel: str
    purpose: str
    max_count: int
    period_days: int

    def applies(self, brand_id: int, channel: str, purpose: str) -> bool:
        return (self.channel == channel and (self.brand_id is None or self.brand_id == brand_id)
                and (not self.purpose or self.purpose == purpose))

    def describe(self) -> str:
        what = f"{self.purpose} " if self.purpose else ""
        return f"≤ {self.max_count} {what}{self.channel} per {self.period_days} days"


def load_caps() -> list[Cap]:
    from .models import FrequencyCap

    return [Cap(c.pk, c.brand_id, c.channel, c.purpose, c.max_count, c.period_days)
            for c in FrequencyCap.objects.all()]


class Ledger:
    """What counts against the caps for a batch of recipients: read with one query, then
    kept up to date in memory as the batch plans more touchpoints."""

    def __init__(self, caps: list[Cap], recipient_hashes: Iterable[str], now: datetime):
        from .models import CAPPED_STATUSES, DueTouchpoint

        self.caps = caps
        self.planned: dict[str, list[tuple]] = defaultdict(list)  # recipient -> touchpoints
        if not caps:
            return
        channels = {c.channel for c in caps}
        horizon = now - timedelta(days=max(c.period_days for c in caps))
        rows = DueTouchpoint.objects.filter(
            recipient_hash__in=list(set(recipient_hashes)), channel__in=channels,
            status__in=CAPPED_STATUSES, due_at__gt=horizon,
        ).values_list("recipient_hash", "brand_id", "channel", "purpose", "due_at")
        for recipient, brand_id, channel, purpose, due_at in rows:
            self.planned[recipient].append((brand_id, channel, purpose, due_at))

    def check(self, recipient: str, brand_id: int, channel: str, purpose: str,
              at: datetime, caps: list[Cap] | None = None) -> tuple[Cap | None, datetime | None]:
        """(None, None) when a touchpoint may go out at `at`; else the cap that bites and
        the earliest moment it allows one. `caps`: the ones known to apply to the
        touchpoint (the scheduler works them out once per step), in the ledger's order."""
        worst: tuple[Cap | None, datetime | None] = (None, None)
        planned = self.planned.get(recipient)
        if not planned:
            return worst
        for cap in self.caps if caps is None else caps:
            if not cap.applies(brand_id, channel, purpose):
                continue
            period = timedelta(days=cap.period_days)
            counted = sorted(t for b, ch, p, t in planned
                             if ch == channel and t > at - period
                             and (cap.brand_id is None or b == cap.brand_id)
                             and (not cap.purpose or p == cap.purpose))
            if len(counted) >= cap.max_count:
                until = counted[len(counted) - cap.max_count] + period
                if worst[1] is None or until > worst[1]:
                    worst = (cap, until)
        return worst

    def add(self, recipient: str, brand_id: int, channel: str, purpose: str, at: datetime):
        self.planned[recipient].append((brand_id, channel, purpose, at))
