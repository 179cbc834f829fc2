"""`journey_lifecycle SLUG live|pause|retire|publish [--migrate OLD=NEW ...]`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from journeys.models import Journey
from orchestration import lifecycle


class Command(BaseCommand):
    help = "Move a journey through its lifecycle: draft → live → paused → retired; publish " \
           "an edited live journey as a new release with an explicit migration rule."

    def add_arguments(self, parser):
        parser.add_argument("journey")
        parser.add_argument("action", choices=["live", "pause", "retire", "publish", "status"])
        parser.add_argument("--migrate", action="append", default=[],
                            help="OLD_STEP=NEW_STEP (repeat; * = people at a removed step)")

    def handle(self, *args, journey, action, migrate, **options):
        target = Journey.objects.filter(slug=journey).first()
        if target is None:
            raise CommandError(f"No journey {journey!r}.")
        now = timezone.now()
        try:
            if action == "live":
                release = lifecycle.go_live(target, now=now)
            elif action == "pause":
                release = lifecycle.pause(target, now=now)
            elif action == "retire":
                release = lifecycle.retire(target, now=now)
            elif action == "publish":
                rules = dict(rule.split("=", 1) for rule in migrate if "=" in rule)
                release = lifecycle.publish(target, migration=rules, now=now)
            else:
                release = lifecycle.running_release(target)
        except lifecycle.LifecycleError as exc:
            raise CommandError(f"{exc.code}: {exc.message}")
        if release is None:
            self.stdout.write(f"{journey}: draft (no release)")
        else:
            self.stdout.write(f"{journey}: release {release.number} {release.state}")
