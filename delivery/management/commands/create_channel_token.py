"""create_channel_token --name NAME --channel CHANNEL --jurisdiction CODE (options repeat)."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from delivery.tokens import create_token


class Command(BaseCommand):
    help = ("Create a channel token scoped to channels and jurisdictions. The key is printed "
            "once, on the last line; only its sha256 is stored.")

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="Who uses the token")
        parser.add_argument("--channel", action="append", required=True, dest="channels",
                            help="Channel code (email, portal, rep, sms, webinar); repeat for more")
        parser.add_argument("--jurisdiction", action="append", required=True,
                            dest="jurisdictions", help="ISO 3166-1 alpha-2 code; repeat for more")
        parser.add_argument("--rate-limit", default="",
                            help="Requests per period for this token, e.g. 600/min")

    def handle(self, *args, name, channels, jurisdictions, rate_limit, **options):
        try:
            token, key = create_token(name=name, channels=channels, jurisdictions=jurisdictions,
                                      rate_limit=rate_limit)
        except ValidationError as exc:
            problems = [f"{field}: {msg}" for field, msgs in exc.message_dict.items() for msg in msgs]
            raise CommandError("Token not created. " + " ".join(problems))
        scope = (f"channels {', '.join(sorted(token.channels.values_list('code', flat=True)))}; "
                 f"jurisdictions {', '.join(sorted(token.jurisdictions.values_list('code', flat=True)))}")
        self.stdout.write(f"Created channel token {token.name!r} for {scope}.")
        self.stdout.write("The key is shown only now; store it in the channel's secrets:")
        self.stdout.write(key)
