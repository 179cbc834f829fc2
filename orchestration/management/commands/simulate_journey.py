"""`simulate_journey SLUG [--size N] [--days D] [--seed S] [--mix cardiology=0.6,...]
[--markets US=0.8,DE=0.2] [--json]`: the dry run of a journey, printed."""

from __future__ import annotations

import json
from dataclasses import asdict

from django.core.management.base import BaseCommand, CommandError

from journeys.models import Journey
from orchestration.simulation import Cohort, simulate


def weights(text: str) -> dict[str, float]:
    out = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, _, value = part.partition("=")
        try:
            out[name.strip()] = float(value or 1)
        except ValueError:
            raise CommandError(f"Bad weight {part!r}: use name=0.5.")
    return out


class Command(BaseCommand):
    help = "Simulate a journey over a synthetic cohort (deterministic with --seed)."

    def add_arguments(self, parser):
        parser.add_argument("journey")
        parser.add_argument("--size", type=int, default=10_000)
        parser.add_argument("--days", type=int, default=90)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--mix", default="", help="specialty=weight,…")
        parser.add_argument("--markets", default="", help="market=weight,… (default: even)")
        parser.add_argument("--consent-rate", type=float, default=0.9)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, journey, size, days, seed, mix, markets, consent_rate, **options):
        target = Journey.objects.filter(slug=journey).first()
        if target is None:
            raise CommandError(f"No journey {journey!r}.")
        cohort = Cohort(size=size, consent_rate=consent_rate,
                        specialty_mix=weights(mix) or {"cardiology": 1.0},
                        market_mix=weights(markets))
        result = simulate(target, cohort=cohort, days=days, seed=seed)
        if options["json"]:
            self.stdout.write(json.dumps(asdict(result), indent=2))
            return
        w = self.stdout.write
        w(f"{result.journey}: {result.size} recipients × {result.days} days from {result.start}, "
          f"seed {result.seed}, {result.seconds} s")
        w("positions: " + ", ".join(f"{k} {v}" for k, v in result.positions.items()))
        totals = {c: sum(day.get(c, 0) for day in result.sends) for c in result.channels}
        w("sends per channel: " + ", ".join(f"{c} {n}" for c, n in totals.items()))
        for key, entry in result.refusals.items():
            w(f"refused {key} ×{entry['count']} from day {entry['first_day']}: {entry['detail']}")
        for cap, n in result.caps.items():
            w(f"cap bites {cap}: {n} postponements")
        for reason, n in result.skipped.items():
            w(f"skipped {reason}: {n}")
        for label, n in result.moves.items():
            w(f"moved by {label}: {n}")
