"""Reads of the review workflow for other apps and the reviewer screens."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Prefetch
from django.utils import timezone

from .models import Signature
from .workflow import Decision, decidable_roles


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


# --- segregation of duties: the facts (the rule is approvals.workflow.check_not_author) -----


def content_editor_ids(version_ids: Iterable[int], *,
                       people: Iterable[int] | None = None) -> dict[int, set[int]]:
    """Who changed each version's content, read from its django-simple-history records.

    A record counts as a content change when it created the version or when any tracked
    field outside the workflow's (`content.models.WORKFLOW_FIELDS`: state, dates, sha256)
    or any many-to-many set its history keeps (tags, citations, companions — whatever
    `HistoricalModuleVersion._history_m2m_fields` lists) differs from the record before it.
    Workflow moves (submission, a reviewer's "request changes", approval) are not edits.
    `people` limits the answer to those user ids (the inbox asks about one person).
    Queries: one for the records, plus one per many-to-many field only when a record by a
    person in question changed no field (then its tags decide).
    """
    from content.models import WORKFLOW_FIELDS, ModuleVersion

    ids = list(dict.fromkeys(int(i) for i in version_ids))
    editors: dict[int, set[int]] = {i: set() for i in ids}
    if not ids:
        return editors
    wanted = None if people is None else {int(p) for p in people}
    history = ModuleVersion.history.model
    bookkeeping = {"history_id", "history_date", "history_change_reason", "history_type",
                   "history_user_id"}
    compared = [f.attname for f in history._meta.fields
                if f.attname not in bookkeeping and f.name not in WORKFLOW_FIELDS
                and f.attname not in WORKFLOW_FIELDS]
    records = list(history.objects.filter(id__in=ids)
                   .order_by("id", "history_date", "history_id")
                   .values("history_id", "history_user_id", *compared))
    undecided = []  # (record, previous record): same fields, so the tags decide
    previous = None
    for record in records:
        user_id = record["history_user_id"]
        if user_id is not None and (wanted is None or user_id in wanted) \
                and user_id not in editors[record["id"]]:
            if previous is None or previous["id"] != record["id"] or any(
                    record[name] != previous[name] for name in compared):
                editors[record["id"]].add(user_id)
            else:
                undecided.append((record, previous))
        previous = record
    if undecided:
        tags = _m2m_sets(history, [r["history_id"] for pair in undecided for r in pair])
        for record, before in undecided:
            if tags[record["history_id"]] != tags[before["history_id"]]:
                editors[record["id"]].add(record["history_user_id"])
    return editors


def _m2m_sets(history, record_ids: list[int]) -> dict[int, dict[str, frozenset]]:
    """For each historical record, the many-to-many rows its history kept, by field."""
    sets: dict[int, dict[str, frozenset]] = {i: {} for i in record_ids}
    for field in history._history_m2m_fields:
        m2m_history = getattr(history, field.name).model
        row_fields = [f.attname for f in m2m_history._meta.fields
                      if f.name not in {"id", "history", "m2m_history_id"}]
        rows: dict[int, set] = defaultdict(set)
        for row in m2m_history.objects.filter(history_id__in=record_ids).values_list(
                "history_id", *row_fields):
            rows[row[0]].add(row[1:])
        for record_id in record_ids:
            sets[record_id][field.name] = frozenset(rows.get(record_id, ()))
    return sets


def author_ids_for_versions(versions: Iterable, *,
                            people: Iterable[int] | None = None) -> dict[int, set[int]]:
    """Everyone segregation of duties counts as an author of each version: its creator, the
    submitter of every review round, and everyone who changed its content (`people`: see
    `content_editor_ids`; creators and submitters are always included). Prefetch
    `review_rounds` when passing many versions."""
    versions = list(versions)
    authors = content_editor_ids((v.pk for v in versions), people=people)
    for version in versions:
        authors[version.pk].add(version.created_by_id)
        authors[version.pk].update(r.submitted_by_id for r in version.review_rounds.all()
                                   if r.submitted_by_id is not None)
    return authors


def decisions_for_versions(version_ids: Iterable[int]) -> dict[int, list]:
    """Every decision signature (approve / request changes) of each version, all rounds."""
    from .models import DECISION_MEANINGS

    ids = list(dict.fromkeys(int(i) for i in version_ids))
    result: dict[int, list] = {i: [] for i in ids}
    for s in Signature.objects.filter(version_id__in=ids, meaning__in=DECISION_MEANINGS).order_by(
            "round", "signed_at", "id"):
        result[s.version_id].append(Decision(role=s.role, meaning=s.meaning, signer_id=s.signer_id,
                                             sha256=s.sha256, round=s.round))
    return result


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


def inbox_for(user, *, now=None, queue: list[InboxRow] | None = None) -> list[InboxRow]:
    """What waits for `user`: versions in review where a role they hold is still to decide
    and segregation of duties lets them decide it (`workflow.decidable_roles`: they did not
    write, change or submit it, and signed no other role on it in any round)."""
    from .roles import roles_of

    held = roles_of(user)
    if not held:
        return []
    queue = review_queue(now=now) if queue is None else queue
    authors = author_ids_for_versions((row.version for row in queue), people=[user.pk])
    rows = []
    for row in queue:
        version = row.version
        signed_this_round = any(s.signer_id == user.pk and s.round == row.round.number
                                for s in version.signatures.all())
        if signed_this_round:
            continue
        decisions = [Decision(role=s.role, meaning=s.meaning, signer_id=s.signer_id,
                              sha256=s.sha256, round=s.round) for s in version.signatures.all()]
        allowed, _ = decidable_roles(actor_id=user.pk, actor_roles=held,
                                     pending_roles=row.pending_roles,
                                     author_ids=authors[version.pk], version_decisions=decisions)
        mine = tuple(allowed)
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
