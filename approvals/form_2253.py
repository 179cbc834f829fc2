"""FDA Form 2253: promotional material is submitted to the FDA at its first use in the US
(21 CFR 314.81(b)(3)(i), 601.12(f)(4)).

Stated once here: which versions need it (`needs_form_2253`), recording the first US use
(written by the serving path, one statement per chunk), recording a submission (a
regulatory reviewer, from the review page), the versions whose submission is due, and the
brand setting that holds delivery back until the submission is recorded
(`missing_submissions`, refusal `form_2253_missing` at assembly).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime

from django import forms
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from content.models import ModuleKind, ModuleVersion, Purpose

from . import audit, errors
from .errors import ApprovalError
from .models import FirstUse, Form2253Submission
from .roles import Role, holds_role

JURISDICTION = "US"
FORM_2253_MISSING = "form_2253_missing"
REFERENCE_MAX = 100


def needs_form_2253(purpose: str, kind: str) -> bool:
    """Promotional content needs the submission; the footer is the sender's legal text,
    not promotion."""
    return purpose == Purpose.PROMOTIONAL and kind != ModuleKind.FOOTER


def record_first_uses(version_ids: Collection[int], *, jurisdiction: str, at: datetime) -> None:
    """Remember `at` as the first use of each version in `jurisdiction` unless one is
    already recorded: a single INSERT ... ON CONFLICT DO NOTHING (the unique (version,
    jurisdiction) constraint keeps the first), in the caller's transaction."""
    if version_ids:
        FirstUse.objects.bulk_create(
            [FirstUse(version_id=pk, jurisdiction=jurisdiction, first_used_at=at)
             for pk in sorted(version_ids)], ignore_conflicts=True)


def missing_submissions(version_ids: Iterable[int]) -> set[int]:
    """Of these versions, those whose brand requires a recorded Form 2253 submission before
    first use and that have none (one query)."""
    ids = list(version_ids)
    if not ids:
        return set()
    return set(ModuleVersion.objects.filter(
        pk__in=ids, module__brand__requires_form_2253_before_first_use=True,
    ).exclude(Exists(Form2253Submission.objects.filter(version=OuterRef("pk"))))
        .values_list("pk", flat=True))


@dataclass(frozen=True)
class DueRow:
    version: ModuleVersion
    first_used_at: datetime


def due(user) -> list[DueRow]:
    """Versions first used in the US without a recorded submission, oldest first, among the
    brands `user` may see."""
    uses = (FirstUse.objects.restrict(user, "view")
            .filter(jurisdiction=JURISDICTION)
            .exclude(Exists(Form2253Submission.objects.filter(version=OuterRef("version_id"))))
            .select_related("version__module__brand").order_by("first_used_at"))
    return [DueRow(u.version, u.first_used_at) for u in uses]


def record_submission(*, version: ModuleVersion, actor, submitted_on: date,
                      reference: str) -> Form2253Submission:
    """Record that `version` was submitted on Form 2253; only a regulatory reviewer may."""
    if not holds_role(actor, Role.REGULATORY):
        raise ApprovalError(errors.ROLE_NOT_HELD,
                            "Only a regulatory reviewer records Form 2253 submissions.")
    reference = (reference or "").strip()
    if not reference:
        raise ApprovalError(errors.INVALID_FORM, "Give the submission's reference.")
    if len(reference) > REFERENCE_MAX:
        raise ApprovalError(errors.TOO_LONG,
                            f"The reference has at most {REFERENCE_MAX} characters.")
    if submitted_on > timezone.localdate():
        raise ApprovalError(errors.INVALID_FORM, "The submission date cannot be in the future.")
    with transaction.atomic():
        submission = Form2253Submission.objects.create(
            version=version, submitted_on=submitted_on, reference=reference,
            recorded_by=actor, recorded_at=timezone.now())
        audit.record("form_2253_recorded", actor=actor, target=version,
                     data={"submitted_on": submitted_on.isoformat(), "reference": reference})
    return submission


class SubmissionForm(forms.Form):
    submitted_on = forms.DateField(label="Submitted on (YYYY-MM-DD)")
    reference = forms.CharField(max_length=REFERENCE_MAX, label="Submission reference")


def review_panel(version: ModuleVersion, held_roles: Collection[str]) -> dict:
    """What the review page shows about the version's Form 2253 (two queries, none for
    content that needs no submission); `held_roles`: the viewer's MLR roles."""
    module = version.module
    if not needs_form_2253(module.purpose, module.kind):
        return {"needed": False}
    return {
        "needed": True,
        "required_before_first_use": module.brand.requires_form_2253_before_first_use,
        "first_use": FirstUse.objects.filter(version=version, jurisdiction=JURISDICTION).first(),
        "submissions": list(Form2253Submission.objects.filter(version=version)
                            .select_related("recorded_by")),
        "form": SubmissionForm() if Role.REGULATORY in held_roles else None,
    }
