"""Reads of the parallel review for the screens: where the current round stands, and the
consolidated feedback an author sees on the edit page. No writes, no rules of their own
(the rules are `approvals.workflow`; these gather facts and ask it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .models import DECISION_MEANINGS, Annotation, Meaning, ReviewRound, Signature
from .roles import REQUIRED_ROLES
from .workflow import Decision, round_label, round_outcome


@dataclass(frozen=True)
class RoundStatus:
    round: ReviewRound | None
    label: str                                  # "v2 · round 3" (or "v2" before any round)
    decisions: dict[str, Signature]             # role -> its decision signature this round
    pending_roles: tuple[str, ...]              # roles still to decide (open round)
    changes_requested_by: tuple[str, ...]       # roles that requested changes this round
    is_open: bool
    is_overdue: bool


def round_status(version) -> RoundStatus:
    """The version's latest round: who decided what, who is still to decide, overdue."""
    round_ = version.review_rounds.order_by("-number").first()
    if round_ is None:
        return RoundStatus(None, round_label(version.number, None), {}, (), (), False, False)
    signatures = list(Signature.objects.filter(version=version, round=round_.number,
                                               meaning__in=DECISION_MEANINGS)
                      .order_by("signed_at", "id"))
    outcome = round_outcome(
        [Decision(role=s.role, meaning=s.meaning, signer_id=s.signer_id, sha256=s.sha256,
                  round=s.round) for s in signatures], sha256=version.sha256)
    return RoundStatus(
        round=round_, label=round_label(version.number, round_.number),
        decisions={s.role: s for s in signatures},
        pending_roles=outcome.missing_roles if round_.is_open else (),
        changes_requested_by=tuple(r for r in REQUIRED_ROLES if any(
            s.role == r and s.meaning == Meaning.REQUEST_CHANGES for s in signatures)),
        is_open=round_.is_open, is_overdue=round_.is_overdue,
    )


@dataclass(frozen=True)
class AuthorFeedback:
    round: ReviewRound | None                   # the last round closed with change requests
    label: str
    change_requests: list[Signature] = field(default_factory=list)  # every role's, in order
    undecided_roles: tuple[str, ...] = ()
    annotations: list[Annotation] = field(default_factory=list)     # open first, then resolved

    @property
    def open_annotations(self) -> list[Annotation]:
        return [a for a in self.annotations if a.is_open]


def feedback_for_author(version) -> AuthorFeedback:
    """What the author must address: the change requests of the last round that returned
    the version (consolidated: every role's) and the version's annotations, open first."""
    round_ = (version.review_rounds.filter(outcome=ReviewRound.Outcome.CHANGES_REQUESTED)
              .order_by("-number").first())
    annotations = sorted(
        Annotation.objects.filter(version=version).select_related("author", "resolved_by"),
        key=lambda a: (not a.is_open, a.created_at, a.pk))
    if round_ is None:
        return AuthorFeedback(None, round_label(version.number, None), [], (), annotations)
    requests = list(Signature.objects.filter(version=version, round=round_.number,
                                             meaning=Meaning.REQUEST_CHANGES)
                    .order_by("signed_at", "id"))
    return AuthorFeedback(round_, round_label(version.number, round_.number), requests,
                          tuple(round_.undecided_roles or ()), annotations)
