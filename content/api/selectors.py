"""Module versions as plain dicts for the API (fast): tags in one query, modules with
their versions. Which rows a caller may see is `<Model>.objects.restrict(user, "view")`
(content.permissions): a channel token only deliverable versions in its scope, a person
the versions of their brands."""

from __future__ import annotations

from collections import defaultdict

from django.db import connection
from django.db.models import QuerySet

from content.models import ModuleVersion

VERSION_SUMMARY_FIELDS = (
    "id", "module_id", "number", "state", "locale__code", "valid_from", "expires_at",
    "approved_at", "sha256",
)
# The text a reader sees. Not content.models.CONTENT_FIELDS: that is what the sha256 covers
# (also locale, asset, token fallbacks, valid_from), which the summary already shows or
# the API does not expose.
VERSION_CONTENT_FIELDS = ("subject", "body_html", "body_text")
TAGS = {
    # name in the API → (m2m through-table accessor, code lookup on the through row)
    "audiences": ("audiences", "audience__code"),
    "specialties": ("specialties", "specialty__code"),
    "stages": ("stages", "stage__code"),
    "jurisdictions": ("jurisdictions", "jurisdiction__code"),
    "channels": ("channels", "channel__code"),
}


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
    return version_items(list(versions.order_by("module_id", "number").values(*fields)),
                         content=content)


def version_items(rows: list[dict], *, content: bool = False) -> list[dict]:
    """Version rows (VERSION_SUMMARY_FIELDS, + VERSION_CONTENT_FIELDS with `content`) as API
    dicts, their tags read in one query."""
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
    return with_versions(modules, version_dicts(
        versions.filter(module_id__in=[m["id"] for m in modules]), content=content))


def with_versions(modules: list[dict], versions: list[dict]) -> list[dict]:
    """Module rows (MODULE_FIELDS) as API dicts, each with its own of `versions` (the
    version dicts of those modules, in order)."""
    by_module: dict[int, list[dict]] = defaultdict(list)
    for version in versions:
        by_module[version.pop("module_id")].append(version)
    return [
        {
            "code": m["code"], "brand": m["brand__slug"], "kind": m["kind"],
            "purpose": m["purpose"], "title": m["title"], "versions": by_module[m["id"]],
        }
        for m in modules
    ]


MODULE_FIELDS = ("id", "code", "brand__slug", "kind", "purpose", "title")
