"""What in approvals can change an assembly: approval signatures (the context checks
content against them) and FDA Form 2253 submissions (a brand may refuse US promotional
content until one is recorded) move the catalog epoch (content.catalog_epoch)."""

from content import catalog_epoch

from .models import Form2253Submission, Signature


def connect() -> None:
    catalog_epoch.watch(Signature, Form2253Submission)
