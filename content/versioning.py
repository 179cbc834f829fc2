"""Creating versions: the only way to change approved content is a new version."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from .models import LOCKED_STATES, ContentModule, ModuleVersion, VersionState

COPIED_FIELDS = ("locale_id", "subject", "body_html", "body_text", "asset_id",
                 "token_fallbacks", "valid_from")
COPIED_M2M = ("audiences", "specialties", "stages", "jurisdictions", "channels", "citations",
              "requires", "excludes")


def open_version_message(version: ModuleVersion) -> str:
    """Why no new version can start while `version` is open, and what to do instead."""
    if version.state == VersionState.IN_REVIEW:
        return (f"{version} is in review: wait for the reviewers' decision, or recall the "
                "submission (possible until the first reviewer decides) and edit it.")
    return (f"{version} is still {version.get_state_display().lower()}: edit it instead of "
            "starting another version.")


@transaction.atomic
def new_version(module: ContentModule, *, author) -> ModuleVersion:
    """Copy the newest version of `module` into a draft numbered one higher.

    The module row is locked so concurrent calls get distinct numbers. Refused while an
    open version (draft, in review, changes requested) exists: edit that one instead.
    """
    ContentModule.objects.select_for_update().filter(pk=module.pk).first()
    latest = module.versions.order_by("-number").first()
    if latest is None:
        raise ValidationError(f"{module.code} has no version to copy; create version 1 first.")
    if latest.state not in LOCKED_STATES:
        raise ValidationError(open_version_message(latest))
    number = (module.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    draft = ModuleVersion(module=module, number=number, created_by=author,
                          state=VersionState.DRAFT,
                          **{name: getattr(latest, name) for name in COPIED_FIELDS})
    draft.save()
    for name in COPIED_M2M:
        getattr(draft, name).set(getattr(latest, name).all())
    draft.refresh_sha256()
    return draft


@transaction.atomic
def set_tags(version: ModuleVersion, **tags) -> ModuleVersion:
    """Replace several tag / citation sets of an editable version in one step.

    `tags` maps names of COPIED_M2M to iterables of objects. The frozen-state guard still
    applies to each change; the sha256 is refreshed once, and the history gets one record
    holding all the new sets (instead of one or two per set).
    """
    unknown = set(tags) - set(COPIED_M2M)
    if unknown:
        raise ValueError(f"Not a tag of a version: {', '.join(sorted(unknown))}")
    version.skip_history_when_saving = True
    version._defer_sha256_refresh = True
    try:
        for name, values in tags.items():
            getattr(version, name).set(list(values))
    finally:
        del version.skip_history_when_saving
        del version._defer_sha256_refresh
    version.refresh_sha256()
    return version
