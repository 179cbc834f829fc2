"""Writes of the review workflow. Views, admin, API, tasks and the demo all call these.

Each service is keyword-only and atomic, locks the version row (`select_for_update`) before
reading the facts it decides on, applies `approvals.workflow`, writes the signature and the
audit entry, and queues notifications and signals with `transaction.on_commit`. Refusals
are `ApprovalError`s (code + message); every refusal is audited after the refused
transaction rolled back, so it is on record and nothing else changed (`record_refusal`,
which the screens also call for a signing form that did not validate).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from content import market_rules
from content.models import ModuleVersion, VersionState
from content.rules import compute_sha256, review_readiness_errors

from . import audit, errors, review_policy, selectors, snapshots, workflow
from . import signals as workflow_signals
from .errors import ApprovalError
from .models import AUTHOR_ROLE, Annotation, Comment, Meaning, ReviewRound, Signature
from .roles import REQUIRED_ROLES, reviewers_for, roles_of
from .signing import Credentials, verify_signer
from .workflow import Action, Decision

COMMENT_MAX_LENGTH = 5000
REASON_MAX_LENGTH = 2000


def review_due_days(brand=None) -> int:
    """Days from submission to a round's due date: the brand's `ReviewPolicy`, else
    `TESSERA_REVIEW_DUE_DAYS` (5)."""
    if brand is None:
        return getattr(settings, "TESSERA_REVIEW_DUE_DAYS", 5)
    return review_policy.policy_for(brand).due_days


@dataclass(frozen=True)
class DecisionResult:
    version: ModuleVersion
    signature: Signature
    outcome: workflow.RoundOutcome


# --- helpers ---------------------------------------------------------------------------


def _locked(version_id: int) -> ModuleVersion:
    return (ModuleVersion.objects.select_for_update()
            .select_related("module__brand", "module__owner", "created_by")
            .get(pk=version_id))


def _current_round(version: ModuleVersion) -> ReviewRound | None:
    return version.review_rounds.order_by("-number").first()


def _round_decisions(version: ModuleVersion, round_number: int) -> list[Decision]:
    return [
        Decision(role=s.role, meaning=s.meaning, signer_id=s.signer_id, sha256=s.sha256,
                 round=s.round)
        for s in Signature.objects.filter(version=version, round=round_number,
                                          meaning__in=[Meaning.APPROVE, Meaning.REQUEST_CHANGES])
    ]


def _move(version: ModuleVersion, action: str, *, actor=None, **fields) -> None:
    """Apply a table transition and save only workflow fields (content stays frozen)."""
    if actor is not None:
        version._history_user = actor  # the history row names who acted, even from a task
    version.state = workflow.next_state(version.state, action)
    for name, value in fields.items():
        setattr(version, name, value)
    version.save(update_fields=["state", "updated_at", *fields])


def _busy_as_refusal(fn: Callable):
    """Run the transaction `fn`; a database still locked by another writer after the busy
    timeout is a `busy` refusal, never a 500. (SQLite transactions begin IMMEDIATE — see
    DATABASES in settings — so writers queue for the lock instead of failing at once;
    PostgreSQL waits on `select_for_update`.)"""
    try:
        return fn()
    except OperationalError as exc:
        if connection.vendor != "sqlite" or "locked" not in str(exc) or connection.in_atomic_block:
            raise
    raise ApprovalError(errors.BUSY, "Someone else is saving a decision on this right now; "
                                     "nothing was saved. Try again.")


# Refusals `signing.verify_signer` audits itself (signature_failed, signing_locked,
# signature_refused_locked, signature_refused), and `busy`, which is contention on the
# database, not a refusal of the person (its audit write would meet the same lock).
_AUDITED_ELSEWHERE = frozenset({errors.WRONG_PASSWORD, errors.SIGNING_LOCKED,
                                errors.CREDENTIALS_REQUIRED, errors.BUSY})


def record_refusal(refusal: ApprovalError, *, actor, target, event: str,
                   fields: list[str] | None = None) -> None:
    """Audit a refused action (`decision_refused`, `withdrawal_refused`,
    `submission_refused`): its code and message, and for a form that did not validate the
    names of the fields at fault — never what was typed (a password never reaches here)."""
    data = {"code": refusal.code, "detail": refusal.message,
            "security_event": refusal.is_security_event}
    if fields:
        data["fields"] = list(fields)
    _busy_as_refusal(lambda: audit.record(event, actor=actor, target=target, data=data))


def _audited_refusal(fn: Callable, *, actor, target, event: str):
    """Run `fn`; every refusal it raises is audited after the rollback, so it is on record
    and nothing else changed."""
    try:
        return _busy_as_refusal(fn)
    except ApprovalError as refusal:
        if refusal.code not in _AUDITED_ELSEWHERE:
            record_refusal(refusal, actor=actor, target=target, event=event)
        raise


def _emails(users) -> list[str]:
    return [u.email for u in users if u.email]


def _queue_mail(to: list[str], subject: str, body: str) -> None:
    from .tasks import send_notification

    if to:
        transaction.on_commit(lambda: send_notification.delay(to, subject, body))


def _notify_reviewers(version: ModuleVersion, round_: ReviewRound, roles, *, exclude_ids,
                      reminder: bool = False) -> None:
    from .notifications import review_url

    people = [u for u in reviewers_for(roles) if u.pk not in exclude_ids]
    label = workflow.round_label(version.number, round_.number)
    # Subjects stay ASCII (mail clients and filters); the body names the round.
    _queue_mail(
        _emails(people),
        f"[Tessera] {'Reminder: review due' if reminder else 'Review needed'}: "
        f"{version.module.code} v{version.number} (round {round_.number})",
        f"{version.module.code} {label} ({version.module.title}) waits for your MLR "
        f"review (due {round_.due_at:%Y-%m-%d}).\n\n"
        f"Open it: {review_url(version.pk)}\n",
    )


def _notify_owner(version: ModuleVersion, subject: str, body: str) -> None:
    from .notifications import review_url

    people = {version.module.owner, version.created_by}
    _queue_mail(_emails(people), f"[Tessera] {version.module.code} v{version.number}: {subject}",
                f"{body}\n\nDetails: {review_url(version.pk)}\n")


def may_submit(user, version: ModuleVersion) -> bool:
    """Authors of the brand (guardian `content.author_brand`), the version's author, the
    module's owner and superusers may submit."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return (user.is_superuser or user.pk in {version.created_by_id, version.module.owner_id}
            or user.has_perm("content.author_brand", version.module.brand))


# --- submission ------------------------------------------------------------------------


def refuse_market_rule_violations(version: ModuleVersion) -> None:
    """Refuse a submission that breaks a market rule of one of the version's markets
    (`content.market_rules`): the code of the first violation, every violation listed."""
    violations = market_rules.version_violations(version)
    if violations:
        raise ApprovalError(violations[0].code,
                            "This version breaks a market rule: "
                            + " ".join(v.detail for v in violations),
                            details=[f"{v.code}: {v.detail}" for v in violations])


def submit_for_review(*, version: ModuleVersion, actor) -> ReviewRound:
    """Send a draft (or a version returned for changes) to MLR review as a new round.

    Refuses with `not_ready` listing every problem (claims without references, no tags...),
    `invalid_state` from other states, `not_permitted` for users outside the brand.
    """
    def run():
        with transaction.atomic():
            locked = _locked(version.pk)
            if not may_submit(actor, locked):
                raise ApprovalError(errors.NOT_PERMITTED,
                                    "Only an author of this brand may submit its content for review.")
            workflow.next_state(locked.state, Action.SUBMIT)
            problems = review_readiness_errors(locked)
            if problems:
                raise ApprovalError(errors.NOT_READY,
                                    "This version is not ready for review: " + " ".join(problems),
                                    details=problems)
            refuse_market_rule_violations(locked)
            locked.refresh_sha256()  # bind the round to the exact bytes now frozen
            previous = _current_round(locked)
            now = timezone.now()
            snapshot = snapshots.content_snapshot(locked)
            round_ = ReviewRound.objects.create(
                version=locked, number=(previous.number + 1) if previous else 1,
                sha256=locked.sha256, submitted_by=actor, submitted_at=now,
                due_at=review_policy.policy_for(locked.module.brand).due_at(now),
                content_snapshot=snapshot,
            )
            _move(locked, Action.SUBMIT, actor=actor)
            # Annotations carry into the new round; those whose anchor moved are marked.
            from .annotations import mark_changed_anchors

            moved = mark_changed_anchors(locked, snapshot["rendered"])
            audit.record("submitted", actor=actor, target=locked,
                         data={"round": round_.number, "sha256": locked.sha256,
                               "due_at": round_.due_at.isoformat(),
                               **({"anchors_changed": moved} if moved else {})})
            _notify_reviewers(locked, round_, REQUIRED_ROLES,
                              exclude_ids={actor.pk, locked.created_by_id})
            return round_

    round_ = _audited_refusal(run, actor=actor, target=version, event="submission_refused")
    version.refresh_from_db()
    return round_


# --- decisions -------------------------------------------------------------------------


def _check(locked: ModuleVersion, round_: ReviewRound | None, *, actor, role, decision,
           comment, expected_sha256) -> None:
    if len(comment) > COMMENT_MAX_LENGTH:
        raise ApprovalError(errors.TOO_LONG,
                            f"Keep the comment under {COMMENT_MAX_LENGTH} characters.")
    # Segregation of duties: authors are the creator, every round's submitter and everyone
    # whose change is in the version's field history; decisions count across all rounds.
    workflow.check_decision(
        state=locked.state, current_sha256=locked.sha256, expected_sha256=expected_sha256 or "",
        author_ids=selectors.author_ids_for_versions([locked])[locked.pk],
        actor_id=actor.pk, actor_roles=roles_of(actor), role=role,
        meaning=decision, comment=comment,
        round_decisions=_round_decisions(locked, round_.number) if round_ else [],
        version_decisions=selectors.decisions_for_versions([locked.pk])[locked.pk],
    )
    if decision == Meaning.APPROVE:
        from .annotations import excerpt

        workflow.check_open_annotations(
            role=role, meaning=decision,
            open_annotations=[(a.pk, excerpt(a)) for a in Annotation.objects.filter(
                version=locked, role=role, state=Annotation.State.OPEN).order_by("id")])


def decide(*, version: ModuleVersion, actor, role: str, decision: str, expected_sha256: str,
           credentials: Credentials | None, comment: str = "",
           session: MutableMapping | None = None) -> DecisionResult:
    """Sign one MLR decision (`approve` or `request_changes`) for `role` on the version's
    current round, bound to `expected_sha256` (the bytes the reviewer saw).

    Order: the rules are checked first (so a person who may not decide does not spend a
    password attempt), then the signer re-authenticates, then under the row lock the rules
    are checked again and the signature written. A "changes requested" sends the version
    Parallel review: the round stays open until every role decided; then the change
    requests of every role go back to the author together, or — three approvals of the same
    sha256 in the round — the version is approved, setting `approved_at` and `expires_at`
    (the brand's validity). A role with open annotations of its own may not approve
    (`open_annotations`).
    """
    comment = (comment or "").strip()

    def precheck():
        fresh = ModuleVersion.objects.select_related("module").get(pk=version.pk)
        _check(fresh, _current_round(fresh), actor=actor, role=role, decision=decision,
               comment=comment, expected_sha256=expected_sha256)

    _audited_refusal(precheck, actor=actor, target=version, event="decision_refused")
    _audited_refusal(lambda: verify_signer(user=actor, credentials=credentials, session=session,
                                           target=version),
                     actor=actor, target=version, event="decision_refused")

    def run():
        with transaction.atomic():
            locked = _locked(version.pk)
            round_ = _current_round(locked)
            _check(locked, round_, actor=actor, role=role, decision=decision, comment=comment,
                   expected_sha256=expected_sha256)
            if compute_sha256(locked) != locked.sha256:
                # The stored hash no longer matches the content (changed outside the app):
                # never sign bytes other than the ones the hash names.
                raise ApprovalError(errors.STALE_VERSION,
                                    "This version's content does not match its recorded sha256; "
                                    "it cannot be signed. Ask an administrator to investigate.")
            now = timezone.now()
            try:
                with transaction.atomic():
                    signature = Signature.objects.create(
                        version=locked, round=round_.number, signer=actor,
                        printed_name=audit.printed_name(actor), role=role, meaning=decision,
                        comment=comment, sha256=locked.sha256, signed_at=now,
                    )
            except IntegrityError:
                # Only reachable without row locks (SQLite) when two requests race: the
                # database's unique constraints keep one decision per role and per person.
                raise ApprovalError(errors.ALREADY_DECIDED,
                                    f"The {role} decision for this round was just given by "
                                    "someone else (or by your other click).")
            audit.record("decided", actor=actor, target=locked, data={
                "round": round_.number, "role": role, "meaning": decision,
                "sha256": locked.sha256, "signature_id": signature.pk, "comment": comment,
            })
            outcome = workflow.round_outcome(_round_decisions(locked, round_.number),
                                             sha256=locked.sha256)
            _apply_outcome(locked, round_, outcome, now=now, actor=actor)
            return DecisionResult(version=locked, signature=signature, outcome=outcome)

    result = _audited_refusal(run, actor=actor, target=version, event="decision_refused")
    version.refresh_from_db()
    return result


def _close_round(round_: ReviewRound, outcome: str, now: datetime, *,
                 at_due_date: bool = False, undecided: tuple[str, ...] = ()) -> None:
    round_.outcome = outcome
    round_.closed_at = now
    round_.closed_at_due_date = at_due_date
    round_.undecided_roles = list(undecided)
    round_.save(update_fields=["outcome", "closed_at", "closed_at_due_date", "undecided_roles"])


def _apply_outcome(locked: ModuleVersion, round_: ReviewRound, outcome: workflow.RoundOutcome,
                   *, now: datetime, actor, at_due_date: bool = False) -> None:
    """Close the round when the outcome says so: approve, or return every change request."""
    if outcome.action == Action.APPROVE:
        _approve(locked, round_, now=now, actor=actor)
    elif outcome.action == Action.REQUEST_CHANGES:
        _return_for_changes(locked, round_, outcome, now=now, actor=actor,
                            at_due_date=at_due_date)


def _return_for_changes(locked: ModuleVersion, round_: ReviewRound,
                        outcome: workflow.RoundOutcome, *, now: datetime, actor,
                        at_due_date: bool) -> None:
    """The consolidated return: one move, one audit entry, one mail listing every role's
    change request (and the roles that did not decide, when the due date closed it)."""
    undecided = outcome.missing_roles if at_due_date else ()
    _close_round(round_, ReviewRound.Outcome.CHANGES_REQUESTED, now,
                 at_due_date=at_due_date, undecided=undecided)
    _move(locked, Action.REQUEST_CHANGES, actor=actor)
    requests = list(Signature.objects.filter(version=locked, round=round_.number,
                                             meaning=Meaning.REQUEST_CHANGES)
                    .order_by("signed_at", "id"))
    audit.record("changes_requested", actor=actor, target=locked, data={
        "round": round_.number, "roles": [s.role for s in requests],
        "undecided_roles": list(undecided), "at_due_date": at_due_date,
        # kept for readers of the former single-role entry
        "role": requests[-1].role if requests else "",
    })
    open_count = Annotation.objects.filter(version=locked, state=Annotation.State.OPEN).count()
    lines = [f"- {s.printed_name} ({s.role}): {s.comment}" for s in requests]
    if undecided:
        lines.append("Not decided by the due date: " + ", ".join(undecided) + ".")
    if open_count:
        lines.append(f"{open_count} open annotation(s) on the version.")
    roles = ", ".join(s.role for s in requests) or "the due date"
    _notify_owner(locked, f"changes requested ({roles})",
                  f"Review {workflow.round_label(locked.number, round_.number)} is closed; "
                  "changes were requested:\n\n" + "\n".join(lines))


def _approve(locked: ModuleVersion, round_: ReviewRound, *, now: datetime, actor) -> None:
    validity = locked.module.brand.effective_validity_days
    _close_round(round_, ReviewRound.Outcome.APPROVED, now)
    _move(locked, Action.APPROVE, actor=actor, approved_at=now, expires_at=now + timedelta(days=validity),
          expiry_notified_at=None)
    audit.record("approved", actor=actor, target=locked, data={
        "round": round_.number, "sha256": locked.sha256,
        "expires_at": locked.expires_at.isoformat(),
    })
    transaction.on_commit(lambda: workflow_signals.version_approved.send(
        sender=ModuleVersion, version=locked))
    _notify_owner(locked, "approved",
                  f"Approved by Medical, Legal and Regulatory; valid until "
                  f"{locked.expires_at:%Y-%m-%d}.")


# --- withdrawal ------------------------------------------------------------------------


def withdraw(*, version: ModuleVersion, actor, reason: str, credentials: Credentials | None,
             role: str | None = None, session: MutableMapping | None = None) -> Signature:
    """Withdraw an approved version at once: a signed decision with a reason.

    The version leaves every channel (assembly refuses withdrawn versions); receivers of
    `version_withdrawn` (webhooks) run after commit.
    """
    reason = (reason or "").strip()
    held = roles_of(actor)
    role = role or (held[0] if held else "")

    def precheck():
        if len(reason) > REASON_MAX_LENGTH:
            raise ApprovalError(errors.TOO_LONG,
                                f"Keep the reason under {REASON_MAX_LENGTH} characters.")
        fresh = ModuleVersion.objects.get(pk=version.pk)
        workflow.check_withdrawal(state=fresh.state, reason=reason, actor_roles=held, role=role)

    _audited_refusal(precheck, actor=actor, target=version, event="withdrawal_refused")
    _audited_refusal(lambda: verify_signer(user=actor, credentials=credentials, session=session,
                                           target=version),
                     actor=actor, target=version, event="withdrawal_refused")

    def run():
        with transaction.atomic():
            locked = _locked(version.pk)
            workflow.check_withdrawal(state=locked.state, reason=reason,
                                      actor_roles=roles_of(actor), role=role)
            now = timezone.now()
            round_ = _current_round(locked)
            signature = Signature.objects.create(
                version=locked, round=round_.number if round_ else 0, signer=actor,
                printed_name=audit.printed_name(actor), role=role, meaning=Meaning.WITHDRAW,
                comment=reason, sha256=locked.sha256, signed_at=now,
            )
            _move(locked, Action.WITHDRAW, actor=actor, withdrawn_at=now, withdrawal_reason=reason)
            audit.record("withdrawn", actor=actor, target=locked, data={
                "role": role, "reason": reason, "sha256": locked.sha256,
                "signature_id": signature.pk,
            })
            transaction.on_commit(lambda: workflow_signals.version_withdrawn.send(
                sender=ModuleVersion, version=locked, reason=reason, actor=actor))
            _notify_owner(locked, "withdrawn",
                          f"Withdrawn by {audit.printed_name(actor)} ({role}). Reason: {reason}")
            return signature

    signature = _audited_refusal(run, actor=actor, target=version, event="withdrawal_refused")
    version.refresh_from_db()
    return signature


# --- recall ----------------------------------------------------------------------------

RECALL_REASON_MAX_LENGTH = REASON_MAX_LENGTH


def recaller_ids(version: ModuleVersion, round_: ReviewRound | None) -> set[int]:
    """Who may recall: the round's submitter, the version's creator, the module's owner."""
    ids = {version.created_by_id, version.module.owner_id}
    if round_ is not None:
        ids.add(round_.submitted_by_id)
    return {i for i in ids if i is not None}


def may_recall(user, version: ModuleVersion) -> bool:
    """Whether the screens offer "Recall": in review, before any decision of the round, to
    its submitter (or the version's creator or module owner)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if version.state != VersionState.IN_REVIEW:
        return False
    round_ = _current_round(version)
    try:
        workflow.check_recall(
            state=version.state, actor_id=user.pk, recaller_ids=recaller_ids(version, round_),
            round_decisions=_round_decisions(version, round_.number) if round_ else [])
    except ApprovalError:
        return False
    return True


def recall(*, version: ModuleVersion, actor, credentials: Credentials | None,
           reason: str = "", session: MutableMapping | None = None) -> Signature:
    """The author takes a submission back before the first decision: a signed act (the same
    re-authentication as a decision; the screens ask the second factor first, as for any
    signature), audited as `recalled`. The round closes as `recalled`, the version is a
    draft again. Refused with `recall_after_decision` once any role decided in the round.
    """
    reason = (reason or "").strip()

    def precheck():
        if len(reason) > RECALL_REASON_MAX_LENGTH:
            raise ApprovalError(errors.TOO_LONG,
                                f"Keep the reason under {RECALL_REASON_MAX_LENGTH} characters.")
        fresh = ModuleVersion.objects.select_related("module").get(pk=version.pk)
        round_ = _current_round(fresh)
        workflow.check_recall(
            state=fresh.state, actor_id=getattr(actor, "pk", None),
            recaller_ids=recaller_ids(fresh, round_),
            round_decisions=_round_decisions(fresh, round_.number) if round_ else [])

    _audited_refusal(precheck, actor=actor, target=version, event="recall_refused")
    _audited_refusal(lambda: verify_signer(user=actor, credentials=credentials, session=session,
                                           target=version),
                     actor=actor, target=version, event="recall_refused")

    def run():
        with transaction.atomic():
            locked = _locked(version.pk)
            round_ = _current_round(locked)
            workflow.check_recall(
                state=locked.state, actor_id=actor.pk, recaller_ids=recaller_ids(locked, round_),
                round_decisions=_round_decisions(locked, round_.number) if round_ else [])
            now = timezone.now()
            signature = Signature.objects.create(
                version=locked, round=round_.number, signer=actor,
                printed_name=audit.printed_name(actor), role=AUTHOR_ROLE,
                meaning=Meaning.RECALL, comment=reason, sha256=locked.sha256, signed_at=now,
            )
            round_.outcome = ReviewRound.Outcome.RECALLED
            round_.closed_at = now
            round_.save(update_fields=["outcome", "closed_at"])
            _move(locked, Action.RECALL, actor=actor)
            audit.record("recalled", actor=actor, target=locked, data={
                "round": round_.number, "sha256": locked.sha256, "reason": reason,
                "signature_id": signature.pk,
            })
            from .notifications import review_url

            people = [u for u in reviewers_for(REQUIRED_ROLES) if u.pk != actor.pk]
            label = workflow.round_label(locked.number, round_.number)
            _queue_mail(_emails(people),
                        f"[Tessera] Review recalled: {locked.module.code} v{locked.number}",
                        f"{audit.printed_name(actor)} recalled {locked.module.code} {label} "
                        f"({locked.module.title}) before any decision: nothing to review now."
                        + (f"\n\nReason: {reason}" if reason else "")
                        + f"\n\n{review_url(locked.pk)}\n")
            return signature

    signature = _audited_refusal(run, actor=actor, target=version, event="recall_refused")
    version.refresh_from_db()
    return signature


# --- the review clock (beat): reminders, escalation, closing overdue rounds --------------


def _open_rounds(now: datetime):
    return (ReviewRound.objects.open().filter(version__state=VersionState.IN_REVIEW)
            .select_related("version__module__brand", "version__module__owner")
            .order_by("due_at", "id"))


def send_review_reminders(*, now: datetime | None = None) -> list[ReviewRound]:
    """Once per round, `reminder_days` before its due date: mail the reviewers of the roles
    that have not decided yet (audited `review_reminder_sent`)."""
    now = now or timezone.now()
    reminded = []
    for candidate in _open_rounds(now):
        policy = review_policy.policy_for(candidate.version.module.brand)
        if not review_policy.needs_reminder(now=now, due_at=candidate.due_at,
                                            reminded_at=candidate.reminded_at, policy=policy):
            continue
        with transaction.atomic():
            locked = _locked(candidate.version_id)
            round_ = ReviewRound.objects.select_for_update().get(pk=candidate.pk)
            if not round_.is_open or round_.reminded_at is not None:
                continue
            pending = workflow.round_outcome(_round_decisions(locked, round_.number),
                                             sha256=locked.sha256).missing_roles
            round_.reminded_at = now
            round_.save(update_fields=["reminded_at"])
            audit.record("review_reminder_sent", actor=None, target=locked, data={
                "round": round_.number, "roles": list(pending),
                "due_at": round_.due_at.isoformat()})
            if pending:
                authors = selectors.author_ids_for_versions([locked])[locked.pk]
                _notify_reviewers(locked, round_, pending, exclude_ids=authors,
                                  reminder=True)
            reminded.append(round_)
    return reminded


def _escalation_recipients(version: ModuleVersion, escalate_to: str) -> list:
    from django.contrib.auth import get_user_model

    if escalate_to in REQUIRED_ROLES:
        return reviewers_for([escalate_to])
    if escalate_to == "administrators":
        return list(get_user_model().objects.filter(is_active=True, is_superuser=True))
    return [version.module.owner]


def escalate_overdue_rounds(*, now: datetime | None = None) -> list[ReviewRound]:
    """Once per round, `escalation_days` after its due date: mail the policy's recipient
    (the module's owner, a role's reviewers or the administrators), audited
    `review_escalated` with the roles still undecided."""
    now = now or timezone.now()
    escalated = []
    for candidate in _open_rounds(now):
        policy = review_policy.policy_for(candidate.version.module.brand)
        if not review_policy.needs_escalation(now=now, due_at=candidate.due_at,
                                              escalated_at=candidate.escalated_at,
                                              policy=policy):
            continue
        with transaction.atomic():
            locked = _locked(candidate.version_id)
            round_ = ReviewRound.objects.select_for_update().get(pk=candidate.pk)
            if not round_.is_open or round_.escalated_at is not None:
                continue
            pending = workflow.round_outcome(_round_decisions(locked, round_.number),
                                             sha256=locked.sha256).missing_roles
            round_.escalated_at = now
            round_.save(update_fields=["escalated_at"])
            audit.record("review_escalated", actor=None, target=locked, data={
                "round": round_.number, "roles": list(pending), "to": policy.escalate_to,
                "due_at": round_.due_at.isoformat()})
            from .notifications import review_url

            label = workflow.round_label(locked.number, round_.number)
            _queue_mail(
                _emails(_escalation_recipients(locked, policy.escalate_to)),
                f"[Tessera] Review overdue: {locked.module.code} v{locked.number} "
                f"(round {round_.number})",
                f"{locked.module.code} {label} ({locked.module.title}) was due on "
                f"{round_.due_at:%Y-%m-%d}; still to decide: {', '.join(pending) or 'none'}.\n\n"
                f"{review_url(locked.pk)}\n")
            escalated.append(round_)
    return escalated


def close_overdue_rounds(*, now: datetime | None = None, actor=None) -> list[ReviewRound]:
    """Past its due date, a round with change requests closes: they go back to the author
    together and the roles that did not decide are recorded (`undecided_roles`). A round
    without change requests stays open (reminded and escalated) — closing it would only
    discard approvals. Each round in its own transaction under the version's row lock."""
    now = now or timezone.now()
    closed = []
    for candidate in _open_rounds(now).filter(due_at__lt=now):
        with transaction.atomic():
            locked = _locked(candidate.version_id)
            round_ = _current_round(locked)
            if round_ is None or round_.pk != candidate.pk or not round_.is_open \
                    or locked.state != VersionState.IN_REVIEW or round_.due_at >= now:
                continue
            outcome = workflow.round_outcome(_round_decisions(locked, round_.number),
                                             sha256=locked.sha256, at_due_date=True)
            if outcome.action is None:
                continue
            _apply_outcome(locked, round_, outcome, now=now, actor=actor, at_due_date=True)
            closed.append(round_)
    return closed


# --- expiry ----------------------------------------------------------------------------


def expire_due_versions(*, now: datetime | None = None, actor=None) -> list[ModuleVersion]:
    """Expire every approved version whose `expires_at` has passed (beat runs this hourly).

    Each version in its own transaction under its row lock, so one failure does not hold
    back the others and a concurrent withdrawal wins cleanly.
    """
    now = now or timezone.now()
    expired = []
    due_ids = list(ModuleVersion.objects.filter(
        state=VersionState.APPROVED, expires_at__lte=now).values_list("pk", flat=True))
    for version_id in due_ids:
        with transaction.atomic():
            locked = _locked(version_id)
            if locked.state != VersionState.APPROVED or locked.expires_at > now:
                continue
            _move(locked, Action.EXPIRE, actor=actor)
            audit.record("expired", actor=actor, target=locked,
                         data={"expires_at": locked.expires_at.isoformat()})
            transaction.on_commit(lambda v=locked: workflow_signals.version_expired.send(
                sender=ModuleVersion, version=v))
            _notify_owner(locked, "expired",
                          f"The approval expired on {locked.expires_at:%Y-%m-%d}; it is no longer "
                          "delivered. Start a new version to re-certify it.")
            expired.append(locked)
    return expired


def notify_expiring(*, now: datetime | None = None, actor=None) -> list[ModuleVersion]:
    """Email owners once when an approved version enters its brand's notice window."""
    now = now or timezone.now()
    candidates = ModuleVersion.objects.filter(
        state=VersionState.APPROVED, expires_at__gt=now, expiry_notified_at__isnull=True,
    ).select_related("module__brand")
    notified = []
    for candidate in candidates:
        notice = timedelta(days=candidate.module.brand.effective_notice_days)
        if candidate.expires_at - now > notice:
            continue
        with transaction.atomic():
            locked = _locked(candidate.pk)
            if locked.state != VersionState.APPROVED or locked.expiry_notified_at is not None:
                continue
            locked.expiry_notified_at = now
            locked.save(update_fields=["expiry_notified_at", "updated_at"])
            audit.record("expiry_notice_sent", actor=actor, target=locked,
                         data={"expires_at": locked.expires_at.isoformat()})
            _notify_owner(locked, f"expires on {locked.expires_at:%Y-%m-%d}",
                          "This approval expires soon. Start a new version and submit it for "
                          "review to keep the content in use.")
            notified.append(locked)
    return notified


# --- comments --------------------------------------------------------------------------


def add_comment(*, version: ModuleVersion, actor, body: str,
                anchor: str = Comment.Anchor.GENERAL) -> Comment:
    """A remark on this exact version (kept with its sha256 and round)."""
    body = (body or "").strip()
    if not body:
        raise ApprovalError(errors.COMMENT_REQUIRED, "Write the comment before saving it.")
    if len(body) > COMMENT_MAX_LENGTH:
        raise ApprovalError(errors.TOO_LONG,
                            f"Keep the comment under {COMMENT_MAX_LENGTH} characters.")
    if anchor not in Comment.Anchor.values:
        raise ApprovalError(errors.UNKNOWN_ANCHOR, f"Unknown comment anchor {anchor!r}.")
    if not (roles_of(actor) or may_submit(actor, version) or actor.is_staff):
        raise ApprovalError(errors.NOT_PERMITTED,
                            "Only reviewers and authors of this brand may comment.")
    def run():
        with transaction.atomic():
            round_ = _current_round(version)
            comment = Comment.objects.create(
                version=version, sha256=version.sha256, round=round_.number if round_ else 0,
                anchor=anchor, author=actor, body=body,
            )
            audit.record("commented", actor=actor, target=version,
                         data={"comment_id": comment.pk, "anchor": anchor})
            return comment

    return _busy_as_refusal(run)
