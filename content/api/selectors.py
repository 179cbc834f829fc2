"""Which module versions an API caller may see, and their data as plain dicts (fast).

- A channel token sees only approved versions inside their validity window, tagged with at
  least one of its channels and one of its jurisdictions.
- A person sees every version of the brands `ContentModule.objects.for_user` gives them.
"""

from __future__ import annotations

from collections import defaultdict

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from content.models import ContentModule, ModuleVersion, VersionState
from delivery.tokens import ChannelClient

VERSION_SUMMARY_FIELDS = (
    "id", "module_id", "number", "state", "locale__code", "valid_from", "expires_at",
    "approved_at", "sha256",
)
VERSION_CONTENT_FIELDS = ("subject", "body_html", "body_text")
TAGS = {
    # name in the API → (m2m through-table accessor, code lookup on the through row)
    "audiences": ("audiences", "audience__code"),
    "specialties": ("specialties", "specialty__code"),
    "stages": ("stages", "stage__code"),
    "jurisdictions": ("jurisdictions", "jurisdiction__code"),
    "channels": ("channels", "channel__code"),
}


def deliverable_versions(*, now=None) -> QuerySet:
    """Approved and inside their validity window now."""
    now = now or timezone.now()
    return ModuleVersion.objects.filter(
        Q(valid_from__isnull=True) | Q(valid_from__lte=now),
        Q(expires_at__isnull=True) | Q(expires_at__gt=now),
        state=VersionState.APPROVED,
    )


def visible_versions(user) -> QuerySet:
    if isinstance(user, ChannelClient):
        channel_through = ModuleVersion.channels.through
        jurisdiction_through = ModuleVersion.jurisdictions.through
        return deliverable_versions().filter(
            Exists(channel_through.objects.filter(
                moduleversion_id=OuterRef("pk"), channel__code__in=user.channels)),
            Exists(jurisdiction_through.objects.filter(
                moduleversion_id=OuterRef("pk"), jurisdiction__code__in=user.jurisdictions)),
        )
    return ModuleVersion.objects.filter(module__in=ContentModule.objects.for_user(user))


def visible_modules(user) -> QuerySet:
    return ContentModule.objects.filter(pk__in=visible_versions(user).values("module_id"))


def _tags_for(version_ids: list[int]) -> dict[int, dict[str, list[str]]]:
    """Tag codes per version: one UNION ALL query over the five M2M tables (the ORM's five
    IN-list queries cost more in Python than in the database on this hot path)."""
    tags: dict[int, dict[str, list[str]]] = defaultdict(lambda: {name: [] for name in TAGS})
    if not version_ids:
        return tags
    placeholders = ", ".join(["%s"] * len(version_ids))
    parts, params = [], []
    for name, (accessor, _code_lookup) in TAGS.items():
        field = ModuleVersion._meta.get_field(accessor)
        through = field.remote_field.through._meta
        target = field.related_model._meta
        target_column = field.m2m_reverse_name()
        parts.append(
            f"SELECT %s, t.moduleversion_id, x.code FROM {through.db_table} t "
            f"JOIN {target.db_table} x ON x.id = t.{target_column} "
            f"WHERE t.moduleversion_id IN ({placeholders})")
        params += [name, *version_ids]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts) + " ORDER BY 3", params)
        for name, version_id, code in cursor.fetchall():
            tags[version_id][name].append(code)
    return tags


def version_dicts(versions: QuerySet, *, content: bool = False) -> list[dict]:
    """Versions as API dicts (tags included) in a fixed number of queries."""
    fields = VERSION_SUMMARY_FIELDS + (VERSION_CONTENT_FIELDS if content else ())
    rows = list(versions.order_by("module_id", "number").values(*fields))
    tags = _tags_for([row["id"] for row in rows])
    out = []
    for row in rows:
        item = {
            "module_id": row["module_id"],
            "number": row["number"],
            "state": row["state"],
            "locale": row["locale__code"],
            "valid_from": row["valid_from"],
            "expires_at": row["expires_at"],
            "approved_at": row["approved_at"],
            "sha256": row["sha256"],
            **tags[row["id"]],
        }
        if content:
            item.update({name: row[name] for name in VERSION_CONTENT_FIELDS})
        out.append(item)
    return out


def module_dicts(modules: list[dict], versions: QuerySet, *, content: bool = False) -> list[dict]:
    """Attach the given versions to module rows (from `.values()`)."""
    by_module: dict[int, list[dict]] = defaultdict(list)
    for version in version_dicts(versions.filter(module_id__in=[m["id"] for m in modules]),
                                 content=content):
        by_module[version.pop("module_id")].append(version)
    return [
        {
            "code": m["code"], "brand": m["brand__slug"], "kind": m["kind"],
            "purpose": m["purpose"], "title": m["title"], "versions": by_module[m["id"]],
        }
        for m in modules
    ]


MODULE_FIELDS = ("id", "code", "brand__slug", "kind", "purpose", "title")
