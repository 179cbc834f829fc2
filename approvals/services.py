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

from . import audit, errors, selectors, workflow
from . import signals as workflow_signals
from .errors import ApprovalError
from .models import Comment, Meaning, ReviewRound, Signature
from .roles import REQUIRED_ROLES, reviewers_for, roles_of
from .signing import Credentials, verify_signer
from .workflow import Action, Decision

COMMENT_MAX_LENGTH = 5000
REASON_MAX_LENGTH = 2000


def review_due_days() -> int:
    return getattr(settings, "TESSERA_REVIEW_DUE_DAYS", 5)


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
        Decision(role=s.role, meaning=s.meaning, signer_id=s.signer_id, sha256=s.sha256)
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


def _notify_reviewers(version: ModuleVersion, round_: ReviewRound, roles, *, exclude_ids) -> None:
    from .notifications import review_url

    people = [u for u in reviewers_for(roles) if u.pk not in exclude_ids]
    _queue_mail(
        _emails(people),
        f"[Tessera] Review needed: {version.module.code} v{version.number}",
        f"{version.module.code} v{version.number} ({version.module.title}) waits for your MLR "
        f"review (round {round_.number}, due {round_.due_at:%Y-%m-%d}).\n\n"
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
            round_ = ReviewRound.objects.create(
                version=locked, number=(previous.number + 1) if previous else 1,
                sha256=locked.sha256, submitted_by=actor, submitted_at=now,
                due_at=now + timedelta(days=review_due_days()),
            )
            _move(locked, Action.SUBMIT, actor=actor)
            audit.record("submitted", actor=actor, target=locked,
                         data={"round": round_.number, "sha256": locked.sha256})
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


def decide(*, version: ModuleVersion, actor, role: str, decision: str, expected_sha256: str,
           credentials: Credentials | None, comment: str = "",
           session: MutableMapping | None = None) -> DecisionResult:
    """Sign one MLR decision (`approve` or `request_changes`) for `role` on the version's
    current round, bound to `expected_sha256` (the bytes the reviewer saw).

    Order: the rules are checked first (so a person who may not decide does not spend a
    password attempt), then the signer re-authenticates, then under the row lock the rules
    are checked again and the signature written. A "changes requested" sends the version
    back to its author; the third approval on the same sha256 approves it, setting
    `approved_at` and `expires_at` (the brand's validity).
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
            if outcome.action == Action.REQUEST_CHANGES:
                _close_round(round_, ReviewRound.Outcome.CHANGES_REQUESTED, now)
                _move(locked, Action.REQUEST_CHANGES, actor=actor)
                audit.record("changes_requested", actor=actor, target=locked,
                             data={"round": round_.number, "role": role})
                _notify_owner(locked, f"changes requested by {role}",
                              f"{audit.printed_name(actor)} ({role}) requested changes:\n\n{comment}")
            elif outcome.action == Action.APPROVE:
                _approve(locked, round_, now=now, actor=actor)
            return DecisionResult(version=locked, signature=signature, outcome=outcome)

    result = _audited_refusal(run, actor=actor, target=version, event="decision_refused")
    version.refresh_from_db()
    return result


def _close_round(round_: ReviewRound, outcome: str, now: datetime) -> None:
    round_.outcome = outcome
    round_.closed_at = now
    round_.save(update_fields=["outcome", "closed_at"])


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
