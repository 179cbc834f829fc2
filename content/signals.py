"""Keep tags of frozen versions frozen, and the sha256 of editable ones current."""

from django.db.models.signals import m2m_changed

from .models import EDITABLE_STATES, ImmutableVersionError, ModuleVersion
from .versioning import COPIED_M2M


def _guard_version_tags(sender, instance, action, reverse, **kwargs):
    if reverse or not isinstance(instance, ModuleVersion):
        return
    if action in {"pre_add", "pre_remove", "pre_clear"}:
        stored_state = ModuleVersion.objects.filter(pk=instance.pk).values_list("state", flat=True).first()
        if stored_state is not None and stored_state not in EDITABLE_STATES:
            raise ImmutableVersionError(
                f"{instance} is {stored_state.replace('_', ' ')}: its tags, citations, "
                "companions and exclusions cannot change. Create a new version instead."
            )
    elif action in {"post_add", "post_remove", "post_clear"}:
        if getattr(instance, "_defer_sha256_refresh", False):
            return  # versioning.set_tags() refreshes once after all its changes
        instance.refresh_sha256()


def connect():
    for name in COPIED_M2M:
        through = getattr(ModuleVersion, name).through
        m2m_changed.connect(_guard_version_tags, sender=through,
                            dispatch_uid=f"tessera-version-{name}")
