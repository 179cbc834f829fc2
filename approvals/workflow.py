"""The review workflow as data and pure functions: no database, no clock, no request.

`TRANSITIONS` is the whole table of allowed state moves; the rule checks take plain facts
(ids, role names, hashes) and return the refusal, so they can be tested exhaustively and the
services (`approvals/services.py`) only gather facts under a row lock and apply the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from content.models import VersionState

from . import errors
from .errors import ApprovalError
from .models import DECISION_MEANINGS, Meaning
from .roles import REQUIRED_ROLES


class Action:
    SUBMIT = "submit"
    REQUEST_CHANGES = "request_changes"
    APPROVE = "approve"          # the last required approval: the version becomes approved
    EXPIRE = "expire"
    WITHDRAW = "withdraw"
    RECALL = "recall"            # the author takes a submission back before any decision


# (state, action) -> next state. Anything not listed is refused with `invalid_state`.
TRANSITIONS: Mapping[tuple[str, str], str] = {
    (VersionState.DRAFT, Action.SUBMIT): VersionState.IN_REVIEW,
    (VersionState.CHANGES_REQUESTED, Action.SUBMIT): VersionState.IN_REVIEW,
    (VersionState.IN_REVIEW, Action.REQUEST_CHANGES): VersionState.CHANGES_REQUESTED,
    (VersionState.IN_REVIEW, Action.APPROVE): VersionState.APPROVED,
    (VersionState.IN_REVIEW, Action.RECALL): VersionState.DRAFT,
    (VersionState.APPROVED, Action.EXPIRE): VersionState.EXPIRED,
    (VersionState.APPROVED, Action.WITHDRAW): VersionState.WITHDRAWN,
}

ACTION_VERBS = {
    Action.SUBMIT: "submitted for review",
    Action.REQUEST_CHANGES: "sent back for changes",
    Action.APPROVE: "approved",
    Action.EXPIRE: "expired",
    Action.WITHDRAW: "withdrawn",
    Action.RECALL: "recalled",
}


def round_label(version_number: int, round_number: int | None) -> str:
    """How screens, mails and exports name a review round: "v2 · round 3" (or "v2")."""
    if not round_number:
        return f"v{version_number}"
    return f"v{version_number} \u00b7 round {round_number}"


def allowed_actions(state: str) -> list[str]:
    """The actions the table allows from `state`."""
    return [action for (source, action) in TRANSITIONS if source == state]


def next_state(state: str, action: str) -> str:
    """The state after `action`, or ApprovalError(invalid_state) naming the current state."""
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        label = VersionState(state).label.lower() if state in VersionState.values else state
        raise ApprovalError(
            errors.INVALID_STATE,
            f"This version is {label}: it cannot be {ACTION_VERBS.get(action, action)}.",
        )


@dataclass(frozen=True)
class Decision:
    """One decision signature already given on the version (facts only)."""

    role: str
    meaning: str
    signer_id: int
    sha256: str
    round: int = 0


# --- segregation of duties: who may decide on a version at all -------------------------------
# Stated once here; the services enforce it at signing, the inbox and the review page ask it
# (`decidable_roles`) so nobody is offered a decision they may not give.


def check_not_author(*, actor_id: int, author_ids: Iterable[int]) -> None:
    """Authors do not review: whoever created the version, submitted it in any round, or
    changed its content (text, tags, citations, companions — its field history says who)."""
    if actor_id in set(author_ids):
        raise ApprovalError(errors.OWN_VERSION,
                            "You wrote, changed or submitted this version: an author may not "
                            "review content they wrote or edited.")


def check_one_role(*, actor_id: int, role: str, version_decisions: Iterable[Decision]) -> None:
    """One person, one role per version, across all its review rounds."""
    for decision in version_decisions:
        if decision.signer_id == actor_id and decision.role != role:
            raise ApprovalError(errors.SECOND_ROLE,
                                f"You already decided for the {decision.role} role on this version "
                                f"(round {decision.round}): one person may not sign for two roles "
                                "on one version.")


def decidable_roles(*, actor_id: int, actor_roles: Iterable[str], pending_roles: Iterable[str],
                    author_ids: Iterable[int], version_decisions: Iterable[Decision],
                    ) -> tuple[list[str], ApprovalError | None]:
    """The pending roles `actor_id` may decide now, and — when a role they hold is pending
    but segregation of duties bars them — the refusal that says why."""
    held = set(actor_roles)
    candidates = [role for role in pending_roles if role in held]
    decisions = list(version_decisions)
    allowed, refusal = [], None
    for role in candidates:
        try:
            check_not_author(actor_id=actor_id, author_ids=author_ids)
            check_one_role(actor_id=actor_id, role=role, version_decisions=decisions)
        except ApprovalError as barred:
            refusal = refusal or barred
            continue
        allowed.append(role)
    return allowed, (None if allowed else refusal)


def check_decision(
    *,
    state: str,
    current_sha256: str,
    expected_sha256: str,
    author_ids: Iterable[int],
    actor_id: int,
    actor_roles: Iterable[str],
    role: str,
    meaning: str,
    comment: str,
    round_decisions: Iterable[Decision],
    version_decisions: Iterable[Decision] = (),
) -> None:
    """Raise the first reason a reviewer may not give this decision now; None if allowed.

    `author_ids`: the creator, every round's submitter and everyone who changed the content;
    `round_decisions`: the current round's; `version_decisions`: every round's.
    Order matters for the message a person sees: the role and state first, then what they
    signed for, then segregation of duties.
    """
    if role not in REQUIRED_ROLES:
        raise ApprovalError(errors.UNKNOWN_ROLE,
                            f"{role!r} is not an MLR role (medical, legal or regulatory).")
    if meaning not in DECISION_MEANINGS:
        raise ApprovalError(errors.UNKNOWN_DECISION,
                            f"{meaning!r} is not a decision (approve or request_changes).")
    if state != VersionState.IN_REVIEW:
        next_state(state, meaning)  # raises invalid_state with the current state
    if role not in set(actor_roles):
        raise ApprovalError(errors.ROLE_NOT_HELD,
                            f"You are not a member of the {role} reviewers: you cannot decide "
                            f"for the {role} role.")
    check_not_author(actor_id=actor_id, author_ids=author_ids)
    if expected_sha256 != current_sha256:
        raise ApprovalError(errors.STALE_VERSION,
                            "This version changed since you opened it (its sha256 differs from the "
                            "one you reviewed). Reload it and review the current content.")
    decisions = list(round_decisions)
    for decision in decisions:
        if decision.role == role:
            raise ApprovalError(errors.ALREADY_DECIDED,
                                f"The {role} decision for this review round has already been given.")
    check_one_role(actor_id=actor_id, role=role,
                   version_decisions=[*decisions, *version_decisions])
    if meaning == Meaning.REQUEST_CHANGES and not (comment or "").strip():
        raise ApprovalError(errors.COMMENT_REQUIRED,
                            "Say what must change: a comment is required to request changes.")


@dataclass(frozen=True)
class RoundOutcome:
    """Where a round stands after its decisions: the action to apply (if any), the roles
    still to decide, and those that requested changes (the consolidated return)."""

    action: str | None
    missing_roles: tuple[str, ...]
    changes_requested_by: tuple[str, ...] = ()


def round_outcome(decisions: Iterable[Decision], *, sha256: str,
                  at_due_date: bool = False) -> RoundOutcome:
    """Parallel review: the round stays open until every MLR role has decided.

    - the three roles approved the exact `sha256`, signed by three different people: approve;
    - every role decided and one or more requested changes: all the change requests go back
      to the author together (consolidated);
    - `at_due_date` (the round is past due): the change requests given so far go back, the
      roles that did not decide are recorded as such; a round with no change request stays
      open (returning it would only discard approvals; reminders and escalation go on);
    - otherwise the round waits for the missing roles.
    Every role decided without three approvals of one sha256 (not reachable through the
    services, which refuse a stale sha256) also returns the version: nothing is approved on
    less.
    """
    decisions = list(decisions)
    decided = {d.role for d in decisions}
    missing = tuple(r for r in REQUIRED_ROLES if r not in decided)
    requested = tuple(r for r in REQUIRED_ROLES
                      if any(d.role == r and d.meaning == Meaning.REQUEST_CHANGES
                             for d in decisions))
    approvals = [d for d in decisions if d.meaning == Meaning.APPROVE and d.sha256 == sha256]
    approved_roles = {d.role for d in approvals}
    signers = {d.signer_id for d in approvals}
    if all(r in approved_roles for r in REQUIRED_ROLES) and len(signers) == len(REQUIRED_ROLES):
        return RoundOutcome(Action.APPROVE, (), ())
    if not missing or (at_due_date and requested):
        return RoundOutcome(Action.REQUEST_CHANGES, missing, requested)
    return RoundOutcome(None, missing, requested)


def check_recall(*, state: str, actor_id: int, recaller_ids: Iterable[int],
                 round_decisions: Iterable[Decision]) -> None:
    """The author takes a submission back: only while it is in review, only its submitter
    (or the version's creator or module owner), and only before the first decision of the
    round — after one, a reviewer has signed on those bytes and the round runs its course."""
    next_state(state, Action.RECALL)
    if actor_id not in set(recaller_ids):
        raise ApprovalError(errors.NOT_PERMITTED,
                            "Only the author who submitted this version (or its creator or the "
                            "module's owner) may recall it.")
    decided = sorted({d.role for d in round_decisions})
    if decided:
        raise ApprovalError(errors.RECALL_AFTER_DECISION,
                            "A reviewer already decided in this round ("
                            + ", ".join(decided) + "): it can no longer be recalled. Wait for "
                            "the round to close.", details=decided)


def check_open_annotations(*, role: str, meaning: str,
                           open_annotations: Iterable[tuple[int, str]]) -> None:
    """A role may not approve while annotations of its own (made for that role, in any
    round of the version) are still open: `open_annotations` = (id, short text) pairs."""
    if meaning != Meaning.APPROVE:
        return
    pending = list(open_annotations)
    if pending:
        raise ApprovalError(
            errors.OPEN_ANNOTATIONS,
            f"The {role} role still has {len(pending)} open annotation(s) on this version: "
            "resolve them before approving.",
            details=[f"#{pk}: {text}" for pk, text in pending])


def check_withdrawal(*, state: str, reason: str, actor_roles: Iterable[str], role: str) -> None:
    """A withdrawal is an approved version, a reason, and a signer holding an MLR role."""
    if not (reason or "").strip():
        raise ApprovalError(errors.REASON_REQUIRED,
                            "Give the reason for the withdrawal (e.g. label change, safety signal).")
    if role not in REQUIRED_ROLES or role not in set(actor_roles):
        raise ApprovalError(errors.ROLE_NOT_HELD,
                            "Only a Medical, Legal or Regulatory reviewer may withdraw an approval, "
                            "signing for a role they hold.")
    next_state(state, Action.WITHDRAW)
