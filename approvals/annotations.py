"""Anchored, resolvable annotations: the rules and the writes (screens and API call these).

- **Who annotates**: a reviewer, for an MLR role they hold and may decide on this version
  (segregation of duties as for decisions: `workflow.decidable_roles`), while the version is
  in review and that role has not yet decided in the open round (annotate, then decide).
- **Who sees**: everyone who may see the version (its brand's reviewers and authors).
- **Who resolves**: a holder of the annotation's role who is not an author of the version
  (the reviewer, or a colleague of the same role), or an author who may submit the version
  (`services.may_submit`) — with an optional note ("reworded in §2"). Not on an approved,
  expired or withdrawn version (those records are closed).
- **Who reopens**: a holder of the annotation's role who is not an author, unless that role
  already approved in the open round (it signed on the state without it).
- **Approval gate**: a role may not approve while annotations of that role are open
  (`workflow.check_open_annotations`, code `open_annotations`, each one listed).
- **Carry-over**: annotations belong to the version, so every later round shows them; at
  each submission `anchor_changed` is recomputed: a text quote whose exact text no longer
  occurs in the new rendered text (or a reference, tag, companion or image no longer on
  the version) is marked changed.
- Every write locks the version row (as decisions do, so an approval and a reopening never
  cross), is audited (`annotation_created`, `annotation_resolved`, `annotation_reopened`)
  and kept by django-simple-history.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from content.models import LOCKED_STATES, ModuleVersion, VersionState

from . import audit, errors, selectors, snapshots, workflow
from .errors import ApprovalError
from .models import Annotation, Meaning, ReviewRound, Signature
from .roles import REQUIRED_ROLES, roles_of

BODY_MAX_LENGTH = 5000
NOTE_MAX_LENGTH = 2000
EXACT_MAX_LENGTH = 1000
CONTEXT_MAX_LENGTH = 200
TAG_FIELDS = {"audience": "audiences", "specialty": "specialties", "stage": "stages",
              "jurisdiction": "jurisdictions", "channel": "channels"}


# --- reads -------------------------------------------------------------------------------


def annotations_for(version, *, state: str | None = None):
    """The version's annotations (every round), oldest first, with their people."""
    qs = (Annotation.objects.filter(version_id=getattr(version, "pk", version))
          .select_related("author", "resolved_by"))
    if state:
        qs = qs.filter(state=state)
    return qs.order_by("created_at", "id")


def open_annotations_for_role(version, role: str) -> list[Annotation]:
    """What blocks `role` from approving (the signing panel lists these)."""
    return list(annotations_for(version, state=Annotation.State.OPEN).filter(role=role))


def excerpt(annotation: Annotation, length: int = 80) -> str:
    """A short label: the quoted text (or the anchored item) and the start of the body."""
    anchor = annotation.anchor or {}
    where = {
        Annotation.Kind.TEXT: f"“{anchor.get('exact', '')}”",
        Annotation.Kind.REFERENCE: f"reference {anchor.get('reference_id', '')}",
        Annotation.Kind.TAG: f"tag {anchor.get('tag', '')}",
        Annotation.Kind.COMPANION: f"companion {anchor.get('module_code', '')}",
        Annotation.Kind.IMAGE: "image",
    }.get(annotation.kind, annotation.kind)
    text = f"{where}: {annotation.body}"
    return text if len(text) <= length else text[: length - 1] + "…"


def _open_round(version) -> ReviewRound | None:
    round_ = version.review_rounds.order_by("-number").first()
    return round_ if round_ is not None and round_.is_open else None


def _round_roles(version, round_number: int) -> dict[str, str]:
    """role -> meaning of the decisions given in the round."""
    return dict(Signature.objects.filter(version=version, round=round_number,
                                         meaning__in=[Meaning.APPROVE, Meaning.REQUEST_CHANGES])
                .values_list("role", "meaning"))


def _is_author(user, version) -> bool:
    return user.pk in selectors.author_ids_for_versions([version], people=[user.pk])[version.pk]


def annotatable_roles(user, version) -> list[str]:
    """The roles `user` may annotate for on `version` now (empty: no annotation form)."""
    if version.state != VersionState.IN_REVIEW:
        return []
    round_ = _open_round(version)
    if round_ is None:
        return []
    held = roles_of(user)
    if not held:
        return []
    decided = _round_roles(version, round_.number)
    pending = [r for r in REQUIRED_ROLES if r not in decided]
    allowed, _ = workflow.decidable_roles(
        actor_id=user.pk, actor_roles=held, pending_roles=pending,
        author_ids=selectors.author_ids_for_versions([version], people=[user.pk])[version.pk],
        version_decisions=selectors.decisions_for_versions([version.pk])[version.pk])
    return allowed


def may_resolve(user, annotation: Annotation, *, version=None) -> bool:
    """A holder of the annotation's role who is not an author, or an author who may submit."""
    from .services import may_submit

    version = version or annotation.version
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if version.state in LOCKED_STATES:
        return False
    if annotation.role in roles_of(user) and not _is_author(user, version):
        return True
    return may_submit(user, version)


def may_reopen(user, annotation: Annotation, *, version=None) -> bool:
    version = version or annotation.version
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if version.state in LOCKED_STATES:
        return False
    if annotation.role not in roles_of(user) or _is_author(user, version):
        return False
    round_ = _open_round(version)
    if round_ is not None and _round_roles(version, round_.number).get(annotation.role) \
            == Meaning.APPROVE:
        return False
    return True


# --- anchors -----------------------------------------------------------------------------


def _text(value, name: str, limit: int, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ApprovalError(errors.INVALID_ANCHOR, f"The anchor's {name} must be text.")
    if required and not value.strip():
        raise ApprovalError(errors.INVALID_ANCHOR, f"The anchor needs its {name}.")
    if len(value) > limit:
        raise ApprovalError(errors.INVALID_ANCHOR,
                            f"The anchor's {name} is too long (at most {limit} characters).")
    return value


def clean_anchor(version, kind: str, anchor) -> dict:
    """Validate `anchor` for `kind` against the version as it is now; return the stored form."""
    if kind not in Annotation.Kind.values:
        raise ApprovalError(errors.UNKNOWN_ANCHOR,
                            f"Unknown annotation kind {kind!r} (text, reference, tag, "
                            "companion or image).")
    if not isinstance(anchor, dict):
        raise ApprovalError(errors.INVALID_ANCHOR, "The anchor must be an object.")
    if kind == Annotation.Kind.TEXT:
        block = anchor.get("block") or "body"
        if block not in snapshots.BLOCKS:
            raise ApprovalError(errors.INVALID_ANCHOR,
                                f"Unknown block {block!r} (subject, body or text).")
        cleaned = {
            "exact": snapshots.normalise(_text(anchor.get("exact"), "exact text",
                                               EXACT_MAX_LENGTH, required=True)),
            "prefix": _text(anchor.get("prefix"), "prefix", CONTEXT_MAX_LENGTH),
            "suffix": _text(anchor.get("suffix"), "suffix", CONTEXT_MAX_LENGTH),
            "block": block,
        }
        if not snapshots.anchor_text_present(cleaned, snapshots.rendered_blocks(version)):
            raise ApprovalError(errors.INVALID_ANCHOR,
                                "The selected text does not occur in this version's "
                                f"{block}: reload the page and select it again.")
        return cleaned
    if kind == Annotation.Kind.REFERENCE:
        ref = anchor.get("reference_id")
        if not isinstance(ref, int) or isinstance(ref, bool) \
                or not version.citations.filter(pk=ref).exists():
            raise ApprovalError(errors.INVALID_ANCHOR,
                                "Choose one of the references this version cites.")
        return {"reference_id": ref}
    if kind == Annotation.Kind.TAG:
        tag = _text(anchor.get("tag"), "tag", 100, required=True)
        field, _, code = tag.partition(":")
        if field not in TAG_FIELDS or not getattr(version, TAG_FIELDS[field]).filter(
                code=code).exists():
            raise ApprovalError(errors.INVALID_ANCHOR,
                                "Choose one of this version's tags, as kind:code "
                                "(e.g. audience:hcp).")
        return {"tag": tag}
    if kind == Annotation.Kind.COMPANION:
        code = _text(anchor.get("module_code"), "module code", 100, required=True)
        if not (version.requires.filter(code=code).exists()
                or version.excludes.filter(code=code).exists()):
            raise ApprovalError(errors.INVALID_ANCHOR,
                                "Choose one of this version's companions or exclusions.")
        return {"module_code": code}
    # image
    if not version.asset_id:
        raise ApprovalError(errors.INVALID_ANCHOR, "This version has no image.")
    return {"asset_id": version.asset_id}


def anchor_still_present(annotation: Annotation, version, blocks: dict[str, str]) -> bool:
    anchor = annotation.anchor or {}
    kind = annotation.kind
    if kind == Annotation.Kind.TEXT:
        return snapshots.anchor_text_present(anchor, blocks)
    if kind == Annotation.Kind.REFERENCE:
        return version.citations.filter(pk=anchor.get("reference_id")).exists()
    if kind == Annotation.Kind.TAG:
        field, _, code = str(anchor.get("tag", "")).partition(":")
        return field in TAG_FIELDS and getattr(version, TAG_FIELDS[field]).filter(
            code=code).exists()
    if kind == Annotation.Kind.COMPANION:
        code = anchor.get("module_code")
        return (version.requires.filter(code=code).exists()
                or version.excludes.filter(code=code).exists())
    if kind == Annotation.Kind.IMAGE:
        return version.asset_id is not None and version.asset_id == anchor.get("asset_id")
    return True


def mark_changed_anchors(version, blocks: dict[str, str] | None = None) -> list[int]:
    """Recompute `anchor_changed` of the version's annotations against its content now (the
    submission of a new round calls this); returns the ids whose flag changed."""
    blocks = blocks if blocks is not None else snapshots.rendered_blocks(version)
    changed = []
    for annotation in Annotation.objects.filter(version=version):
        moved = not anchor_still_present(annotation, version, blocks)
        if moved != annotation.anchor_changed:
            annotation.anchor_changed = moved
            annotation.save(update_fields=["anchor_changed"])
            changed.append(annotation.pk)
    return changed


# --- writes ------------------------------------------------------------------------------


def _locked_version(version_id: int) -> ModuleVersion:
    return (ModuleVersion.objects.select_for_update().select_related("module__brand")
            .get(pk=version_id))


def _body(body: str, *, required: bool, limit: int, what: str) -> str:
    body = (body or "").strip() if isinstance(body, str) else ""
    if required and not body:
        raise ApprovalError(errors.COMMENT_REQUIRED, f"Write the {what} before saving it.")
    if len(body) > limit:
        raise ApprovalError(errors.TOO_LONG, f"Keep the {what} under {limit} characters.")
    return body


def _run(fn, *, actor, target, event):
    from .services import _audited_refusal

    return _audited_refusal(fn, actor=actor, target=target, event=event)


def create_annotation(*, version, actor, kind: str, anchor: dict, body: str,
                      role: str | None = None) -> Annotation:
    """Annotate `version` for `role` (default: the one role the actor may annotate for).

    Refusals: `invalid_state` (not in review), `role_not_held` / `own_version` /
    `second_role` (who may not review it), `already_decided` (the role decided this round),
    `unknown_role`, `unknown_anchor`, `invalid_anchor`, `comment_required`, `too_long`.
    """
    def run():
        text = _body(body, required=True, limit=BODY_MAX_LENGTH, what="annotation")
        with transaction.atomic():
            locked = _locked_version(version.pk)
            if locked.state != VersionState.IN_REVIEW or _open_round(locked) is None:
                raise ApprovalError(errors.INVALID_STATE,
                                    "Annotations are made while a version is in review.")
            round_ = _open_round(locked)
            held = roles_of(actor)
            chosen = role
            if chosen is None:
                allowed = annotatable_roles(actor, locked)
                chosen = allowed[0] if len(allowed) == 1 else (held[0] if held else "")
            if chosen not in REQUIRED_ROLES:
                if not held:
                    raise ApprovalError(errors.ROLE_NOT_HELD,
                                        "Only MLR reviewers annotate a version in review.")
                raise ApprovalError(errors.UNKNOWN_ROLE,
                                    f"{chosen!r} is not an MLR role (medical, legal or "
                                    "regulatory).")
            if chosen not in held:
                raise ApprovalError(errors.ROLE_NOT_HELD,
                                    f"You are not a member of the {chosen} reviewers.")
            workflow.check_not_author(
                actor_id=actor.pk,
                author_ids=selectors.author_ids_for_versions([locked])[locked.pk])
            workflow.check_one_role(
                actor_id=actor.pk, role=chosen,
                version_decisions=selectors.decisions_for_versions([locked.pk])[locked.pk])
            if chosen in _round_roles(locked, round_.number):
                raise ApprovalError(errors.ALREADY_DECIDED,
                                    f"The {chosen} role already decided in this round: "
                                    "annotate before deciding.")
            cleaned = clean_anchor(locked, kind, anchor)
            annotation = Annotation(
                version=locked, round=round_.number, sha256=locked.sha256, author=actor,
                role=chosen, kind=kind, anchor=cleaned, body=text)
            annotation._history_user = actor
            annotation.save()
            audit.record("annotation_created", actor=actor, target=locked, data={
                "annotation_id": annotation.pk, "role": chosen, "kind": kind,
                "round": round_.number, "sha256": locked.sha256})
            return annotation

    return _run(run, actor=actor, target=version, event="annotation_refused")


def _locked_annotation(annotation) -> tuple[Annotation, ModuleVersion]:
    pk = getattr(annotation, "pk", annotation)
    version_id = Annotation.objects.filter(pk=pk).values_list("version_id", flat=True).first()
    if version_id is None:
        raise ApprovalError(errors.NOT_FOUND, "No such annotation.")
    locked = _locked_version(version_id)
    return Annotation.objects.select_for_update().get(pk=pk), locked


def resolve_annotation(*, annotation, actor, note: str = "") -> Annotation:
    """Mark an open annotation resolved (see the module doc for who may)."""
    def run():
        text = _body(note, required=False, limit=NOTE_MAX_LENGTH, what="note")
        with transaction.atomic():
            row, locked = _locked_annotation(annotation)
            if not may_resolve(actor, row, version=locked):
                if locked.state in LOCKED_STATES:
                    raise ApprovalError(errors.INVALID_STATE,
                                        f"This version is {locked.get_state_display().lower()}: "
                                        "its annotations are closed records.")
                raise ApprovalError(errors.NOT_PERMITTED,
                                    f"Only a {row.role} reviewer or the version's author may "
                                    "resolve this annotation.")
            if row.state != Annotation.State.OPEN:
                raise ApprovalError(errors.INVALID_STATE, "This annotation is already resolved.")
            row.state = Annotation.State.RESOLVED
            row.resolved_by = actor
            row.resolved_at = timezone.now()
            row.resolution_note = text
            row._history_user = actor
            row.save(update_fields=["state", "resolved_by", "resolved_at", "resolution_note"])
            audit.record("annotation_resolved", actor=actor, target=locked, data={
                "annotation_id": row.pk, "role": row.role, "note": text})
            return row

    return _run(run, actor=actor, target=getattr(annotation, "version", None),
                event="annotation_refused")


def reopen_annotation(*, annotation, actor, note: str = "") -> Annotation:
    """Open a resolved annotation again (a reviewer of its role: the fix did not do)."""
    def run():
        text = _body(note, required=False, limit=NOTE_MAX_LENGTH, what="note")
        with transaction.atomic():
            row, locked = _locked_annotation(annotation)
            if row.state != Annotation.State.RESOLVED:
                raise ApprovalError(errors.INVALID_STATE, "This annotation is already open.")
            if not may_reopen(actor, row, version=locked):
                if locked.state in LOCKED_STATES:
                    raise ApprovalError(errors.INVALID_STATE,
                                        f"This version is {locked.get_state_display().lower()}: "
                                        "its annotations are closed records.")
                raise ApprovalError(errors.NOT_PERMITTED,
                                    f"Only a {row.role} reviewer who may still decide this "
                                    "round may reopen this annotation.")
            row.state = Annotation.State.OPEN
            row.resolved_by = None
            row.resolved_at = None
            row.resolution_note = ""
            row._history_user = actor
            row.save(update_fields=["state", "resolved_by", "resolved_at", "resolution_note"])
            audit.record("annotation_reopened", actor=actor, target=locked, data={
                "annotation_id": row.pk, "role": row.role, "note": text})
            return row

    return _run(run, actor=actor, target=getattr(annotation, "version", None),
                event="annotation_refused")
