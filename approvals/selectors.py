"""Reads of the review workflow for other apps and the reviewer screens."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Prefetch
from django.utils import timezone

from .models import Signature


def signatures_for_versions(version_ids: Iterable[int]) -> dict[int, list[dict]]:
    """Signatures of each version, oldest first, in one query.

    Each dict: signer_id, printed_name, role, meaning, signed_at (ISO 8601 UTC, "Z"),
    sha256, round. Versions without signatures map to an empty list.
    """
    ids = list(dict.fromkeys(int(i) for i in version_ids))
    result: dict[int, list[dict]] = {i: [] for i in ids}
    if not ids:
        return result
    for signature in Signature.objects.filter(version_id__in=ids).order_by(
        "version_id", "round", "signed_at", "id"
    ):
        result[signature.version_id].append(signature.manifest_dict())
    return result


def approval_signatures_for_versions(version_ids: Iterable[int]) -> dict[int, list[dict]]:
    """Only the approving signatures of each version's approving round (what a manifest cites)."""
    grouped: dict[int, list[dict]] = defaultdict(list)
    for version_id, signatures in signatures_for_versions(version_ids).items():
        approving = [s for s in signatures if s["meaning"] == "approve"]
        last_round = max((s["round"] for s in approving), default=None)
        grouped[version_id] = [s for s in approving if s["round"] == last_round]
    return dict(grouped)


# --- reviewer screens ----------------------------------------------------------------------


@dataclass(frozen=True)
class InboxRow:
    version: object
    round: object
    pending_roles: tuple[str, ...]
    my_roles: tuple[str, ...]
    age: timedelta
    overdue: bool


def _open_round(version):
    rounds = list(version.review_rounds.all())
    return rounds[-1] if rounds else None


def review_queue(*, now=None) -> list[InboxRow]:
    """Every version in review with its open round and the roles still to decide
    (a fixed number of queries whatever the length)."""
    from content.models import ModuleVersion, VersionState

    from .models import DECISION_MEANINGS, ReviewRound
    from .roles import REQUIRED_ROLES

    now = now or timezone.now()
    versions = (
        ModuleVersion.objects.filter(state=VersionState.IN_REVIEW)
        .select_related("module__brand", "created_by")
        .prefetch_related(
            Prefetch("review_rounds", queryset=ReviewRound.objects.order_by("number")),
            Prefetch("signatures", queryset=Signature.objects.filter(
                meaning__in=DECISION_MEANINGS).order_by("round", "signed_at")),
        )
    )
    rows = []
    for version in versions:
        round_ = _open_round(version)
        if round_ is None:
            continue
        decided = {s.role for s in version.signatures.all() if s.round == round_.number}
        rows.append(InboxRow(
            version=version, round=round_,
            pending_roles=tuple(r for r in REQUIRED_ROLES if r not in decided),
            my_roles=(), age=now - round_.submitted_at, overdue=now > round_.due_at,
        ))
    rows.sort(key=lambda row: row.round.due_at)
    return rows


def inbox_for(user, *, now=None) -> list[InboxRow]:
    """What waits for `user`: versions in review where a role they hold is still to decide,
    that they did not write or submit, and on which they have not signed for another role."""
    from .roles import roles_of

    held = roles_of(user)
    if not held:
        return []
    rows = []
    for row in review_queue(now=now):
        version = row.version
        if user.pk in {version.created_by_id, row.round.submitted_by_id}:
            continue
        signed_this_round = any(s.signer_id == user.pk and s.round == row.round.number
                                for s in version.signatures.all())
        if signed_this_round:
            continue
        mine = tuple(r for r in row.pending_roles if r in held)
        if mine:
            rows.append(InboxRow(version=version, round=row.round, pending_roles=row.pending_roles,
                                 my_roles=mine, age=row.age, overdue=row.overdue))
    return rows


def last_approved_before(version):
    """The newest earlier version that was approved (even if since expired or withdrawn)."""
    from content.models import ModuleVersion

    return (ModuleVersion.objects.filter(module_id=version.module_id, number__lt=version.number,
                                         approved_at__isnull=False)
            .select_related("locale").order_by("-number").first())
