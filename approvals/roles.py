"""MLR roles and the Django groups that grant them.

A reviewer decides for a role only while a member of its group; membership is read at the
moment of signing (inside the decision's transaction), never cached.
"""

from __future__ import annotations

from django.contrib.auth.models import Group

# The roles and their groups are defined once, in content (its visibility rule needs the
# groups and content is the lower floor); this module is where the workflow asks about them.
from content.permissions import MLR_ROLE_GROUPS as ROLE_GROUPS
from content.permissions import MlrRole as Role

__all__ = ["GROUP_ROLES", "REQUIRED_ROLES", "ROLE_GROUPS", "Role", "holds_role", "reviewers_for",
           "role_group", "roles_of"]

GROUP_ROLES: dict[str, str] = {group: role for role, group in ROLE_GROUPS.items()}
REQUIRED_ROLES: tuple[str, ...] = tuple(ROLE_GROUPS)


def role_group(role: str) -> Group:
    """The group of `role`, created on first use (the content data migration also seeds it)."""
    group, _ = Group.objects.get_or_create(name=ROLE_GROUPS[role])
    return group


def roles_of(user) -> list[str]:
    """The MLR roles `user` holds now, in the canonical order (one query)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return []
    names = set(user.groups.filter(name__in=ROLE_GROUPS.values()).values_list("name", flat=True))
    return [role for role in REQUIRED_ROLES if ROLE_GROUPS[role] in names]


def holds_role(user, role: str) -> bool:
    return role in roles_of(user)


def reviewers_for(roles) -> list:
    """Active users holding any of `roles` (for notifications)."""
    from django.contrib.auth import get_user_model

    groups = [ROLE_GROUPS[r] for r in roles]
    return list(
        get_user_model().objects.filter(is_active=True, groups__name__in=groups).distinct()
        .order_by("username")
    )
