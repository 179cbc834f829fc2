"""Send windows: when a market may be contacted, in the market's own time zone.

A window is local hours [start, end) on allowed weekdays; outside them is quiet. Operators
set a market's window in `SendWindow`; markets without a row use `DEFAULTS` (business
hours Monday to Friday in the market's capital's zone), others `FALLBACK` (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = (0, 1, 2, 3, 4)
ZONES = {
    "DE": "Europe/Berlin", "AT": "Europe/Vienna", "CH": "Europe/Zurich", "FR": "Europe/Paris",
    "IT": "Europe/Rome", "ES": "Europe/Madrid", "NL": "Europe/Amsterdam", "GB": "Europe/London",
    "IE": "Europe/Dublin", "US": "America/New_York", "CA": "America/Toronto",
    "JP": "Asia/Tokyo", "AU": "Australia/Sydney", "BR": "America/Sao_Paulo",
}


@dataclass(frozen=True)
class Window:
    market: str
    time_zone: str
    start_hour: int = 9
    end_hour: int = 17
    weekdays: frozenset[int] = frozenset(WEEKDAYS)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def describe(self) -> str:
        days = "Mon-Fri" if self.weekdays == frozenset(WEEKDAYS) else \
            ",".join("MTWTFSS"[d] for d in sorted(self.weekdays))
        return f"{self.start_hour:02d}-{self.end_hour:02d} {days} {self.time_zone}"


FALLBACK = Window("", "UTC")


def default_window(market: str) -> Window:
    zone = ZONES.get((market or "").upper())
    return Window(market.upper(), zone) if zone else Window(market.upper(), FALLBACK.time_zone)


def load_windows() -> dict[str, Window]:
    """Every configured market's window (the defaults for the others: `window_for`)."""
    from .models import SendWindow

    return {w.market.upper(): Window(w.market.upper(), w.time_zone, w.start_hour, w.end_hour,
                                     frozenset(w.weekdays or WEEKDAYS))
            for w in SendWindow.objects.all()}


def window_for(market: str, table: dict[str, Window]) -> Window:
    return table.get((market or "").upper()) or default_window(market or "")


def next_open(at: datetime, window: Window) -> datetime:
    """The earliest moment ≥ `at` inside the window (UTC). DST-safe: the local hours are
    built per day in the zone. A window with no day or no hours answers `at`."""
    zone = window.zone
    local = at.astimezone(zone)
    if not window.weekdays or window.end_hour <= window.start_hour:
        return at
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        if day.weekday() not in window.weekdays:
            continue
        start = datetime.combine(day, time(window.start_hour), tzinfo=zone)
        end = (datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
               if window.end_hour >= 24 else datetime.combine(day, time(window.end_hour),
                                                              tzinfo=zone))
        candidate = max(start, local) if offset == 0 else start
        if candidate < end:
            return candidate.astimezone(UTC)
    return at


def is_open(at: datetime, window: Window) -> bool:
    return next_open(at, window) <= at


QUARTER = timedelta(minutes=15)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_UNKNOWN = object()


class Calendar:
    """`next_open` for one window, remembered per quarter hour of UTC — the scheduler's
    precomputed local-time table (no time-zone conversion per profile).

    Window edges fall on whole local hours and every current UTC offset is a multiple of
    15 minutes, so inside one UTC quarter hour whose offset does not change the answer is
    either "open: `at` itself" or "closed: the same next opening". Each quarter is worked
    out once, with `next_open` itself at its first and last microsecond; a quarter where
    those disagree that way (an odd offset, a DST change inside it) answers through
    `next_open` for every moment (tests/orchestration/test_scheduler_equivalence.py)."""

    def __init__(self, window: Window):
        self.window = window
        self.zone = window.zone
        self.quarters: dict[int, object] = {}

    def next_open(self, at: datetime) -> datetime:
        quarter = (at - EPOCH) // QUARTER
        entry = self.quarters.get(quarter, _UNKNOWN)
        if entry is _UNKNOWN:
            entry = self.quarters[quarter] = self._work_out(quarter)
        if entry is True:
            return at
        if entry is None:
            return next_open(at, self.window)
        return entry

    def _work_out(self, quarter: int):
        first = EPOCH + quarter * QUARTER
        last = first + QUARTER - timedelta(microseconds=1)
        if first.astimezone(self.zone).utcoffset() != last.astimezone(self.zone).utcoffset():
            return None
        opens_first, opens_last = next_open(first, self.window), next_open(last, self.window)
        if opens_first == first and opens_last == last:
            return True  # open throughout
        if opens_first == opens_last and opens_first > last:
            return opens_first  # closed throughout, one next opening
        return None
