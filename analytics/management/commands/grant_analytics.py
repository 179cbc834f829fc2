"""`manage.py grant_analytics --token NAME [--revoke]`: give a channel token the analytics
scope (read aggregated, suppressed journey figures over the API), or take it away."""

from django.core.management.base import BaseCommand, CommandError

from analytics.models import AnalyticsGrant
from delivery.models import ChannelToken


class Command(BaseCommand):
    help = "Give (or --revoke) a channel token the analytics scope."

    def add_arguments(self, parser):
        parser.add_argument("--token", required=True, help="The token's name")
        parser.add_argument("--revoke", action="store_true")

    def handle(self, *args, **options):
        tokens = list(ChannelToken.objects.filter(name=options["token"], revoked_at__isnull=True))
        if len(tokens) != 1:
            raise CommandError(f"{len(tokens)} active tokens are named {options['token']!r}; "
                               "need exactly one.")
        if options["revoke"]:
            AnalyticsGrant.objects.filter(token=tokens[0]).delete()
            self.stdout.write(f"analytics scope revoked from {tokens[0].name}")
        else:
            AnalyticsGrant.objects.get_or_create(token=tokens[0])
            self.stdout.write(f"analytics scope granted to {tokens[0].name}")
