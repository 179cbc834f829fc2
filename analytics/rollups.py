"""Incremental rollups of engagement events and deliveries (docs/analytics.md, "Rollups").

`run()` is what the Celery beat task calls every minute. One run, in ONE transaction:
1. lock the watermark rows (`select_for_update(skip_locked=True)`), so two runs never
   overlap: a run that finds them locked by another returns at once, `skipped`;
2. read events and deliveries with an id above the watermark minus `REREAD_IDS` (ids are
   not committed in order: a batch that commits late is still seen by a later run — also
   when nothing newer came: the watermark keeps how many rows of that window it read);
3. mark the (journey, day) cells and the (enrollment, step) pairs they touch as dirty;
4. recompute every dirty (journey, day) from the raw rows (delete + insert) and merge the
   dirty (enrollment, step) rows (min first, max last, flags or-ed);
5. move the watermarks — in the same transaction as the writes.

Every write is a recomputation or an idempotent merge, so re-reading rows is harmless, a
run killed midway rolls back whole, and `rebuild()` (from scratch) gives the same tables:
the property tests/analytics/test_rollups.py checks on random histories.

Days older than the raw-event retention (`TESSERA_EVENT_RETENTION_DAYS`) are never
recomputed (their events may be gone); `purge_raw_events` deletes only rolled-up events,
with their history copies.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from approvals import audit
from delivery.models import DeliveredVersion, Delivery
from journeys.models import EngagementEvent, Enrollment, EventType, Journey, Step

from . import bulk
from .models import DailyRollup, EnrollmentMarket, RecipientStep, Watermark

EVENTS, DELIVERIES = "events", "deliveries"
REREAD_IDS = 10_000
BATCH = 200_000
COUNTED = {EventType.OPENED: "opened", EventType.CLICKED: "clicked",
           EventType.DOWNLOADED: "downloaded", EventType.DECLINED: "declined",
           EventType.IGNORED: "ignored", EventType.ATTENDED: "attended",
           EventType.NO_ENGAGEMENT_FOR: "silent"}
FLAGS = {EventType.OPENED: "opened", EventType.CLICKED: "clicked",
         EventType.DECLINED: "declined", EventType.IGNORED: "ignored"}


def retention_days() -> int:
    return int(getattr(settings, "TESSERA_EVENT_RETENTION_DAYS", 400))


def _cutoff_day(now=None) -> dt.date:
    return ((now or timezone.now()) - dt.timedelta(days=retention_days())).date()


def _day_bounds(day: dt.date):
    start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


class _Catalog:
    """Steps of the journeys involved: id -> (journey id, stage id, channel code), and
    (journey slug, step key) -> step id; the journeys' sole market where they have one."""

    def __init__(self):
        self.steps: dict[int, tuple[int, int, str]] = {}
        self.by_key: dict[tuple[str, str], int] = {}
        self.journey_ids: dict[str, int] = {}
        self.slugs: dict[int, str] = {}
        self.sole_market: dict[int, str] = {}
        for step in Step.objects.values("pk", "key", "journey_id", "journey__slug", "stage_id",
                                        "channel__code"):
            self.steps[step["pk"]] = (step["journey_id"], step["stage_id"], step["channel__code"])
            self.by_key[(step["journey__slug"], step["key"])] = step["pk"]
            self.journey_ids[step["journey__slug"]] = step["journey_id"]
            self.slugs[step["journey_id"]] = step["journey__slug"]
        markets = defaultdict(list)
        for journey_id, code in Journey.jurisdictions.through.objects.values_list(
                "journey_id", "jurisdiction__code"):
            markets[journey_id].append(code)
        self.sole_market = {j: codes[0] for j, codes in markets.items() if len(codes) == 1}


def _markets(enrollment_ids, catalog: _Catalog, journey_of: dict[int, int]) -> dict[int, str]:
    known = dict(EnrollmentMarket.objects.filter(enrollment_id__in=list(enrollment_ids))
                 .values_list("enrollment_id", "market"))
    return {e: known.get(e) or catalog.sole_market.get(journey_of[e], "") for e in enrollment_ids}


def _recompute_days(journey_id: int, days: list[dt.date], catalog: _Catalog) -> None:
    """Recompute the rollup rows of these days of one journey from the raw rows: one read
    of events and deliveries over the span of the days (they come in runs of ≤ 31 days)."""
    days = sorted(days)
    wanted = set(days)
    start, _ = _day_bounds(days[0])
    _, end = _day_bounds(days[-1])
    DailyRollup.objects.filter(journey_id=journey_id, day__in=days).delete()
    step_ids = [s for s, (j, _, _) in catalog.steps.items() if j == journey_id]
    events = [(e, s, t, at.astimezone(dt.UTC).date()) for e, s, t, at in
              EngagementEvent.objects.filter(step_id__in=step_ids, occurred_at__gte=start,
                                             occurred_at__lt=end)
              .values_list("enrollment_id", "step_id", "event_type", "occurred_at")]
    events = [row for row in events if row[3] in wanted]
    journey_of = {e: journey_id for e, _, _, _ in events}
    markets = _markets(journey_of, catalog, journey_of)
    cells: dict[tuple, dict] = {}
    people: dict[tuple, set] = defaultdict(set)

    def cell(day, step_id, market, version_id=0):
        _, stage_id, channel = catalog.steps[step_id]
        key = (day, step_id, channel, market, version_id)
        if key not in cells:
            cells[key] = {"stage_id": stage_id}
        return key, cells[key]

    for enrollment_id, step_id, event_type, day in events:
        key, counts = cell(day, step_id, markets[enrollment_id])
        counts["events"] = counts.get("events", 0) + 1
        field = COUNTED.get(event_type)
        if field:
            counts[field] = counts.get(field, 0) + 1
        people[key].add(enrollment_id)
    slug = catalog.slugs.get(journey_id)
    deliveries = Delivery.objects.filter(journey_slug=slug, served_at__gte=start, served_at__lt=end)
    for step_key, jurisdiction, served_at in deliveries.values_list(
            "step_key", "jurisdiction", "served_at"):
        day = served_at.astimezone(dt.UTC).date()
        step_id = catalog.by_key.get((slug, step_key))
        if step_id is None or day not in wanted:
            continue
        _, counts = cell(day, step_id, jurisdiction)
        counts["deliveries"] = counts.get("deliveries", 0) + 1
    for step_key, jurisdiction, version_id, served_at in DeliveredVersion.objects.filter(
            delivery__in=deliveries).values_list("delivery__step_key", "jurisdiction",
                                                 "version_id", "delivery__served_at"):
        day = served_at.astimezone(dt.UTC).date()
        step_id = catalog.by_key.get((slug, step_key))
        if step_id is None or day not in wanted:
            continue
        _, counts = cell(day, step_id, jurisdiction, version_id)
        counts["deliveries"] = counts.get("deliveries", 0) + 1
    DailyRollup.objects.bulk_create([
        DailyRollup(day=day, journey_id=journey_id, step_id=step_id, channel=channel,
                    market=market, module_version_id=version_id,
                    recipients=len(people.get((day, step_id, channel, market, version_id), ())),
                    **counts)
        for (day, step_id, channel, market, version_id), counts in cells.items()
    ], batch_size=1000)


def _runs(days: list[dt.date], span: int = 31):
    """Sorted days cut into runs no longer than `span` days."""
    run: list[dt.date] = []
    for day in sorted(days):
        if run and (day - run[0]).days >= span:
            yield run
            run = []
        run.append(day)
    if run:
        yield run


def _merge_recipient_steps(pairs: set[tuple[int, int]], catalog: _Catalog) -> None:
    """Fold the raw events of dirty (enrollment, step) pairs into `RecipientStep`: first_at
    takes the minimum, last_at the maximum, flags are or-ed — idempotent, and correct even
    when older raw events were purged (the row keeps what they contributed)."""
    if not pairs:
        return
    enrollment_ids = {e for e, _ in pairs}
    facts: dict[tuple[int, int], dict] = {}
    for chunk in _chunks(sorted(enrollment_ids), 5000):
        rows = EngagementEvent.objects.filter(enrollment_id__in=chunk).values_list(
            "enrollment_id", "step_id", "event_type", "occurred_at")
        for enrollment_id, step_id, event_type, at in rows:
            if (enrollment_id, step_id) not in pairs or step_id not in catalog.steps:
                continue
            fact = facts.setdefault((enrollment_id, step_id), {"first_at": at, "last_at": at})
            fact["first_at"] = min(fact["first_at"], at)
            fact["last_at"] = max(fact["last_at"], at)
            flag = FLAGS.get(event_type)
            if flag:
                fact[flag] = True
    journey_of = {e: catalog.steps[s][0] for e, s in facts}
    markets = _markets(journey_of, catalog, journey_of)
    existing = {(r.enrollment_id, r.step_id): r for chunk in _chunks(sorted(enrollment_ids), 5000)
                for r in RecipientStep.objects.filter(enrollment_id__in=chunk)}
    new, changed = [], []
    for (enrollment_id, step_id), fact in facts.items():
        journey_id, stage_id, _ = catalog.steps[step_id]
        row = existing.get((enrollment_id, step_id))
        if row is None:
            new.append((journey_id, enrollment_id, stage_id, step_id, markets[enrollment_id],
                        fact["first_at"], fact["last_at"],
                        *(fact.get(flag, False) for flag in FLAGS.values())))
            continue
        row.first_at = min(row.first_at, fact["first_at"])
        row.last_at = max(row.last_at, fact["last_at"])
        for flag in FLAGS.values():
            setattr(row, flag, getattr(row, flag) or fact.get(flag, False))
        row.market = markets[enrollment_id]
        changed.append(row)
    bulk.insert(RecipientStep, [*_RSTEP_FIELDS, *FLAGS.values()], new)
    RecipientStep.objects.bulk_update(
        changed, ["first_at", "last_at", "market", *FLAGS.values()], batch_size=1000)


_RSTEP_FIELDS = ("journey_id", "enrollment_id", "stage_id", "step_id", "market", "first_at",
                 "last_at")


def _chunks(items, size):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _lock_watermarks() -> tuple[Watermark, Watermark] | None:
    """Both watermark rows, locked until the run's transaction ends — or None when another
    run holds them (`SKIP LOCKED`: a beat run that finds one still going returns at once
    instead of queueing behind it; the next minute's run picks up whatever is new)."""
    for name in (EVENTS, DELIVERIES):
        Watermark.objects.get_or_create(name=name)
    marks = {mark.name: mark for mark in Watermark.objects.select_for_update(skip_locked=True)
             .filter(name__in=[EVENTS, DELIVERIES]).order_by("name")}
    if len(marks) < 2:
        return None
    return marks[EVENTS], marks[DELIVERIES]


def _window_rows(model, mark: Watermark) -> int:
    return model.objects.filter(pk__gt=max(0, mark.last_id - REREAD_IDS),
                                pk__lte=mark.last_id).count()


def run(*, batch: int = BATCH, now=None) -> dict:
    """One incremental run (see the module docstring). Returns what it did; `skipped` is
    True (and nothing is done) when another run holds the watermarks."""
    with transaction.atomic():
        locked = _lock_watermarks()
        if locked is None:
            return {"skipped": True, "days": 0, "pairs": 0, "journeys": []}
        events_mark, deliveries_mark = locked
        top_event = EngagementEvent.objects.aggregate(m=Max("pk"))["m"] or 0
        top_delivery = Delivery.objects.aggregate(m=Max("pk"))["m"] or 0
        if (top_event <= events_mark.last_id and top_delivery <= deliveries_mark.last_id
                and _window_rows(EngagementEvent, events_mark) == events_mark.window_rows
                and _window_rows(Delivery, deliveries_mark) == deliveries_mark.window_rows):
            # Nothing newer, and no row committed late below the watermarks either.
            return {"skipped": False, "days": 0, "pairs": 0, "events_to": events_mark.last_id,
                    "deliveries_to": deliveries_mark.last_id, "journeys": []}
        catalog = _Catalog()
        dirty_days: set[tuple[int, dt.date]] = set()
        pairs: set[tuple[int, int]] = set()

        event_rows = list(EngagementEvent.objects.filter(
            pk__gt=max(0, events_mark.last_id - REREAD_IDS),
        ).order_by("pk").values_list("pk", "enrollment_id", "step_id", "occurred_at")[:batch])
        events_to = max([events_mark.last_id, *(r[0] for r in event_rows)])
        for _, enrollment_id, step_id, at in event_rows:
            if step_id in catalog.steps:
                dirty_days.add((catalog.steps[step_id][0], at.astimezone(dt.UTC).date()))
                pairs.add((enrollment_id, step_id))

        delivery_rows = list(Delivery.objects.filter(
            pk__gt=max(0, deliveries_mark.last_id - REREAD_IDS),
        ).order_by("pk").values_list("pk", "journey_slug", "served_at", "recipient_pseudonym",
                                     "jurisdiction")[:batch])
        deliveries_to = max([deliveries_mark.last_id, *(r[0] for r in delivery_rows)])
        served_now: set[tuple[int, str]] = set()  # (journey, recipient pseudonym)
        for _, slug, served_at, pseudonym, _jurisdiction in delivery_rows:
            journey_id = catalog.journey_ids.get(slug)
            if journey_id is None:
                continue
            dirty_days.add((journey_id, served_at.astimezone(dt.UTC).date()))
            served_now.add((journey_id, pseudonym))
        _assign_markets(served_now, dirty_days, pairs, catalog, deliveries_to)
        _markets_from_earlier_deliveries({e for e, _ in pairs}, deliveries_to)

        cutoff = _cutoff_day(now)
        per_journey = defaultdict(list)
        for journey_id, day in dirty_days:
            if day >= cutoff:
                per_journey[journey_id].append(day)
        for journey_id, days in sorted(per_journey.items()):
            for run_of_days in _runs(days):
                _recompute_days(journey_id, run_of_days, catalog)
        _merge_recipient_steps(pairs, catalog)
        events_mark.last_id, deliveries_mark.last_id = events_to, deliveries_to
        # What this run read of the next run's re-read window (all of it: rows come in id
        # order, and the window starts above this run's own re-read start).
        events_mark.window_rows = sum(1 for r in event_rows if r[0] > events_to - REREAD_IDS)
        deliveries_mark.window_rows = sum(1 for r in delivery_rows
                                          if r[0] > deliveries_to - REREAD_IDS)
        events_mark.save()
        deliveries_mark.save()
        return {"skipped": False, "days": len(dirty_days), "pairs": len(pairs),
                "events_to": events_to,
                "deliveries_to": deliveries_to,
                "journeys": sorted({journey_id for journey_id, _ in dirty_days})}


def _assign_markets(served_now, dirty_days, pairs, catalog, deliveries_to: int) -> None:
    """An enrollment's market is its first delivery's jurisdiction (by delivery id, so a
    rebuild agrees). This run's deliveries say which enrollments may learn theirs; the
    market itself is read from the whole log up to the watermark, since a delivery before
    this run's window (served before the recipient enrolled) may be the first. When one is
    learnt, the enrollment's days and steps are dirty again."""
    if not served_now:
        return
    by_journey = defaultdict(set)
    for journey_id, pseudonym in served_now:
        by_journey[journey_id].add(pseudonym)
    for journey_id, pseudonyms in by_journey.items():
        for chunk in _chunks(sorted(pseudonyms), 2000):
            enrollments = list(Enrollment.objects.filter(
                journey_id=journey_id, recipient_hash__in=chunk).values_list("pk", flat=True))
            known = set(EnrollmentMarket.objects.filter(
                enrollment_id__in=enrollments).values_list("enrollment_id", flat=True))
            fresh = _first_delivery_markets([pk for pk in enrollments if pk not in known],
                                            deliveries_to)
            if not fresh:
                continue
            for enrollment_id, step_id, at in EngagementEvent.objects.filter(
                    enrollment_id__in=list(fresh)).values_list("enrollment_id", "step_id",
                                                               "occurred_at"):
                if step_id in catalog.steps:
                    dirty_days.add((journey_id, at.astimezone(dt.UTC).date()))
                    pairs.add((enrollment_id, step_id))


def _set_path_markets(markets: dict[int, str]) -> None:
    """Write a newly learnt market onto every path row of the enrollment — also the rows
    whose raw events were purged already (no event marks those pairs dirty again)."""
    by_market = defaultdict(list)
    for enrollment_id, market in markets.items():
        by_market[market].append(enrollment_id)
    for market, enrollment_ids in by_market.items():
        RecipientStep.objects.filter(enrollment_id__in=enrollment_ids).update(market=market)


def _markets_from_earlier_deliveries(enrollment_ids, deliveries_to: int) -> None:
    """Enrollments first seen now whose recipient was served before they enrolled: their
    market is their first delivery's (read up to the deliveries watermark)."""
    known = set()
    for chunk in _chunks(sorted(enrollment_ids), 5000):
        known |= set(EnrollmentMarket.objects.filter(enrollment_id__in=chunk)
                     .values_list("enrollment_id", flat=True))
    for chunk in _chunks(sorted(set(enrollment_ids) - known), 2000):
        _first_delivery_markets(chunk, deliveries_to)


def _first_delivery_markets(enrollment_ids, deliveries_to: int) -> dict[int, str]:
    """Record, for enrollments without a market, the jurisdiction of the first delivery (by
    id, up to the watermark) to their recipient in their journey; returns what was learnt."""
    if not enrollment_ids:
        return {}
    enrollments = {(slug, h): pk for pk, slug, h in Enrollment.objects.filter(
        pk__in=list(enrollment_ids)).values_list("pk", "journey__slug", "recipient_hash")}
    found: dict[int, str] = {}
    for slug, pseudonym, jurisdiction in Delivery.objects.filter(
            recipient_pseudonym__in={h for _, h in enrollments}, pk__lte=deliveries_to,
    ).order_by("pk").values_list("journey_slug", "recipient_pseudonym", "jurisdiction"):
        pk = enrollments.get((slug, pseudonym))
        if pk is not None:
            found.setdefault(pk, jurisdiction)
    EnrollmentMarket.objects.bulk_create(
        [EnrollmentMarket(enrollment_id=pk, market=m) for pk, m in found.items()],
        ignore_conflicts=True)
    _set_path_markets(found)
    return found


def rebuild(*, now=None) -> dict:
    """Drop every derived row and roll up everything again (`manage.py rebuild_analytics`)."""
    with transaction.atomic():
        DailyRollup.objects.all().delete()
        RecipientStep.objects.all().delete()
        EnrollmentMarket.objects.all().delete()
        Watermark.objects.all().delete()
        return run(batch=10**12, now=now)


HISTORY_PURGE_SETTING = "tessera.event_history_purge_before"  # analytics migration 0003
HISTORY_FLOOR_DAYS = 30  # the same migration's floor


def purge_raw_events(*, now=None) -> dict:
    """Delete raw engagement events older than the retention window that a rollup run has
    already read, and the journeys app's history copies of those events (the same rule on
    the history table, so copies of events deleted otherwise go too); rollups and recipient
    paths stay. The purge is written to the audit trail. Returns how many of each went."""
    cutoff_start, _ = _day_bounds(_cutoff_day(now))
    mark = Watermark.objects.filter(name=EVENTS).values_list("last_id", flat=True).first() or 0
    rolled_up = max(0, mark - REREAD_IDS)
    # The database refuses to delete history younger than HISTORY_FLOOR_DAYS (one hour's
    # margin for clocks): such copies wait for a later purge.
    history_before = min(cutoff_start, timezone.now() - dt.timedelta(days=HISTORY_FLOOR_DAYS,
                                                                      hours=1))
    purged = {"events": 0, "history": 0}
    for model, counter, key, event_id, before in (
            (EngagementEvent, "events", "pk", "pk", cutoff_start),
            (EngagementEvent.history.model, "history", "history_id", "id", history_before)):
        old = model.objects.filter(occurred_at__lt=before, **{f"{event_id}__lte": rolled_up})
        while ids := list(old.order_by().values_list(key, flat=True)[:5000]):
            with transaction.atomic():
                if connection.vendor == "postgresql":
                    with connection.cursor() as cursor:  # lets the history trigger pass these
                        cursor.execute("SELECT set_config(%s, %s, true)",
                                       [HISTORY_PURGE_SETTING, cutoff_start.isoformat()])
                # _raw_delete: one DELETE, no per-row signals (so no history row of the delete).
                purged[counter] += model.objects.filter(**{f"{key}__in": ids})._raw_delete(
                    model.objects.db)
    if purged["events"] or purged["history"]:
        audit.record("analytics_raw_events_purged",
                     data={**purged, "occurred_before": cutoff_start.isoformat(),
                           "retention_days": retention_days()})
    return purged
