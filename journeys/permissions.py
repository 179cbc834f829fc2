"""Who may design journeys: the `journey-designers` group (membership is the role).

A designer edits journeys on the map's builder and in the admin: the group gives the model
permissions; which journeys is still the brand rule (`Journey.objects.restrict`), so a
designer also needs the brand (content.permissions.grant_author_brand).
"""

from django.contrib.auth.models import Group, Permission

DESIGNERS_GROUP = "journey-designers"

DESIGNER_MODEL_PERMS = tuple(
    f"{action}_{model}"
    for model in ("journey", "stage", "step", "slot", "transition")
    for action in ("add", "change", "delete", "view")
)


def ensure_designer_permissions() -> None:
    """post_migrate: the group has every journey model permission; adds only what is missing."""
    group, _ = Group.objects.get_or_create(name=DESIGNERS_GROUP)
    group.permissions.add(*Permission.objects.filter(
        content_type__app_label="journeys", codename__in=DESIGNER_MODEL_PERMS))
