"""Who may see and write which brand's content (django-guardian object permissions).

One rule, used by the admin, the API, the reviewer screens and the demo alike:
- superusers and MLR reviewers (members of the `mlr-*` groups) see every brand;
- an author sees, and writes, only brands they hold `content.author_brand` on
  (a guardian object permission on the `Brand`, given to the user or to one of their groups);
- everyone else sees nothing.

A channel (an API token, not a person) sees no brand as such: only the versions it may
deliver (`content.deliverability`) tagged with one of its channels and jurisdictions, and
what those versions show (their module, brand, references, asset).

Every model that follows the rule exposes it as `<Model>.objects.restrict(user_or_client,
action)` (NetBox style): content models here, review records in `approvals.models`,
journeys in `journeys.models`, channel records in `delivery.models`.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Group, Permission
from django.db.models import QuerySet, TextChoices
from guardian.shortcuts import assign_perm, get_objects_for_user, remove_perm

AUTHOR_BRAND_PERM = "content.author_brand"
AUTHORS_GROUP = "authors"


class MlrRole(TextChoices):
    """The MLR review roles. They live here, not in `approvals.roles` (which re-exports
    them with the workflow's role helpers), because the visibility rule below needs their
    groups and content is the lower floor."""

    MEDICAL = "medical", "Medical"
    LEGAL = "legal", "Legal"
    REGULATORY = "regulatory", "Regulatory"


# The Django group that grants each role (membership is the role).
MLR_ROLE_GROUPS: dict[str, str] = {
    MlrRole.MEDICAL: "mlr-medical",
    MlrRole.LEGAL: "mlr-legal",
    MlrRole.REGULATORY: "mlr-regulatory",
}
REVIEWER_GROUPS = tuple(MLR_ROLE_GROUPS.values())

# Model-level permissions each group needs to reach the admin pages at all; which rows
# they then see and change is decided per brand below.
AUTHOR_MODEL_PERMS = (
    "add_contentmodule", "change_contentmodule", "view_contentmodule",
    "add_moduleversion", "change_moduleversion", "view_moduleversion", "delete_moduleversion",
    "add_reference", "change_reference", "view_reference",
    "add_asset", "change_asset", "view_asset",
    "view_brand", "view_audience", "view_specialty", "view_stage", "view_jurisdiction",
    "view_channel", "view_locale",
)
REVIEWER_MODEL_PERMS = (
    "view_contentmodule", "view_moduleversion", "view_reference", "view_asset", "view_brand",
    "view_audience", "view_specialty", "view_stage", "view_jurisdiction", "view_channel",
    "view_locale",
)


# Actions `restrict()` knows. "view": read the row. "change": write it (authors of the brand,
# superusers; never a reviewer for that alone, never a channel).
VIEW, CHANGE = "view", "change"
ACTIONS = (VIEW, CHANGE)


@dataclass(frozen=True)
class ChannelScope:
    channels: frozenset[str]
    jurisdictions: frozenset[str]


def channel_scope(user_or_client) -> ChannelScope | None:
    """The channels and jurisdictions of a channel caller (an API token's request.user);
    None for a person.

    Recognised by shape, not by class, because the class lives on a higher floor (or in
    `cms.api`): a channel caller says `is_channel = True`, or, failing that, carries
    `channels` and `jurisdictions` without being a model instance."""
    if user_or_client is None:
        return None
    is_channel = getattr(user_or_client, "is_channel", None)
    if is_channel is None:
        is_channel = (not hasattr(user_or_client, "_meta")
                      and hasattr(user_or_client, "channels")
                      and hasattr(user_or_client, "jurisdictions"))
    if not is_channel:
        return None
    return ChannelScope(channels=frozenset(user_or_client.channels),
                        jurisdictions=frozenset(user_or_client.jurisdictions))


def check_action(action: str) -> None:
    if action not in ACTIONS:
        raise ValueError(f"Unknown action {action!r}; use one of {', '.join(ACTIONS)}.")


def restrict_people(queryset: QuerySet, user, action: str, brand_lookup: str) -> QuerySet:
    """The people half of `restrict()`: rows of `queryset` whose brand (reached by
    `brand_lookup`, e.g. "module__brand") `user` may `action`. Superusers everything, MLR
    reviewers everything to view, authors their brands, anyone else (a channel caller
    included) nothing. One query for the role check (cached on the user), none for the
    brands (a subquery)."""
    check_action(action)
    if not _is_active(user):
        return queryset.none()
    if user.is_superuser or (action == VIEW and is_reviewer(user)):
        return queryset.all()
    return queryset.filter(**{f"{brand_lookup}__in": authored_brands(user).values("pk")})


def _is_active(user) -> bool:
    """An active, signed-in person (a channel caller is not one: it holds no brand)."""
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_active
                and channel_scope(user) is None)


def is_reviewer(user) -> bool:
    """A member of one of the MLR role groups."""
    if not _is_active(user):
        return False
    cached = getattr(user, "_tessera_is_reviewer", None)
    if cached is None:
        cached = user.groups.filter(name__in=REVIEWER_GROUPS).exists()
        user._tessera_is_reviewer = cached
    return cached


def sees_all_brands(user) -> bool:
    return _is_active(user) and (user.is_superuser or is_reviewer(user))


def authored_brands(user) -> QuerySet:
    """Brands `user` may write content for (superusers: all)."""
    from .models import Brand

    if not _is_active(user):
        return Brand.objects.none()
    if user.is_superuser:
        return Brand.objects.all()
    return get_objects_for_user(user, AUTHOR_BRAND_PERM, klass=Brand,
                                accept_global_perms=False, with_superuser=False)


def visible_brands(user) -> QuerySet:
    """Brands whose content `user` may see: all for superusers and reviewers."""
    from .models import Brand

    if sees_all_brands(user):
        return Brand.objects.all()
    return authored_brands(user)


_BRAND_IDS_CACHE = "_tessera_authored_brand_ids"


def authored_brand_ids(user) -> frozenset[int]:
    """Ids of the brands `user` authors, read once per user object (one query).

    A request loads a fresh user, so the cache lives as long as one request; grant and
    revoke below clear it on the objects they are given.
    """
    if not _is_active(user):
        return frozenset()
    cached = getattr(user, _BRAND_IDS_CACHE, None)
    if cached is None:
        cached = frozenset(authored_brands(user).values_list("pk", flat=True))
        setattr(user, _BRAND_IDS_CACHE, cached)
    return cached


def can_author_brand(user, brand) -> bool:
    """True when `user` may create or change content of `brand` (a Brand or its id)."""
    if not _is_active(user) or brand is None:
        return False
    if user.is_superuser:
        return True
    brand_id = getattr(brand, "pk", brand)
    return brand_id in authored_brand_ids(user)


def grant_author_brand(user_or_group, brand) -> None:
    """Let a user (or every member of a group) author `brand`."""
    assign_perm(AUTHOR_BRAND_PERM, user_or_group, brand)
    user_or_group.__dict__.pop(_BRAND_IDS_CACHE, None)


def revoke_author_brand(user_or_group, brand) -> None:
    remove_perm(AUTHOR_BRAND_PERM, user_or_group, brand)
    user_or_group.__dict__.pop(_BRAND_IDS_CACHE, None)


def ensure_group_permissions(**kwargs) -> None:
    """post_migrate: give the role groups the model permissions the admin needs.

    Runs after every migrate (permissions only exist once post_migrate created them);
    it only adds what is missing and never removes what an administrator added.
    """
    wanted = {AUTHORS_GROUP: AUTHOR_MODEL_PERMS}
    wanted.update({name: REVIEWER_MODEL_PERMS for name in REVIEWER_GROUPS})
    for group_name, codenames in wanted.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        perms = Permission.objects.filter(content_type__app_label="content", codename__in=codenames)
        group.permissions.add(*perms)
