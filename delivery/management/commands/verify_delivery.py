"""verify_delivery FILE.eml --manifest M.json: is this delivered message the approved content?"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from delivery.verification import VerificationInputError, read_manifest, read_message, verify

# Exit codes: 0 verified, 1 the message differs, 2 the files cannot be verified.
DIFFERS, BAD_INPUT = 1, 2


class Command(BaseCommand):
    help = ("Prove that a delivered message (.eml) is the content MLR approved, from the "
            "manifest Tessera returned with it: every hash is derived again from the signature "
            "records. Prints 'verified' (exit 0) or each difference, the first differing "
            "module first (exit 1); unreadable files exit 2.")

    def add_arguments(self, parser):
        parser.add_argument("message", help="The delivered message, an RFC 5322 .eml file")
        parser.add_argument("--manifest", required=True, help="The assembly's manifest (JSON)")

    def handle(self, *args, message, manifest, **options):
        try:
            delivered = read_message(_read(message, "message"))
            report = verify(delivered, read_manifest(_read(manifest, "manifest")))
        except VerificationInputError as exc:
            raise CommandError(str(exc), returncode=BAD_INPUT)
        for line in report.checked:
            self.stdout.write(f"ok: {line}")
        if report.verified:
            self.stdout.write(self.style.SUCCESS(
                f"verified: {message} is the approved content its manifest names."))
            return
        for line in report.differences:
            self.stdout.write(self.style.ERROR(f"differs: {line}"))
        raise CommandError(f"{message} is not the approved content: "
                           f"{len(report.differences)} difference(s), first: "
                           f"{report.differences[0]}", returncode=DIFFERS)


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CommandError(f"Cannot read the {what} {path}: {exc.strerror}.",
                           returncode=BAD_INPUT)
