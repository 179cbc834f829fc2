"""SQL text of the assembly reads (`snapshot.py`), built once per process from the models'
table and column names. Each SELECT lists its columns in the order of the dataclass that
`snapshot.py` fills from it."""

from __future__ import annotations

from functools import cache

from content.models import (
    Audience,
    Brand,
    Channel,
    ContentModule,
    Jurisdiction,
    Locale,
    ModuleVersion,
)

from ..models import Journey, Slot, Step

# snapshot.VersionRow's fields, in order.
VERSION_COLUMNS = (
    "v.id", "v.module_id", "m.code", "m.kind", "m.purpose", "v.number", "v.state", "v.sha256",
    "v.valid_from", "v.expires_at", "v.approved_at", "v.withdrawn_at", "v.asset_id",
    "v.created_at",
)
# Tag field of ModuleVersion -> the column of the tag read (None: the id itself) and a
# second column (specialties match by code or name).
TAG_FIELDS = {
    "audiences": ("code", None), "jurisdictions": ("code", None), "channels": ("code", None),
    "stages": (None, None), "specialties": ("code", "name"),
}
# A selector's candidates: the brand's approved versions of the selector kinds.
# `v.state || ''` keeps the planner on the module index: without statistics SQLite would
# otherwise walk the (unselective) state index.
CANDIDATES_WHERE = (
    f"v.module_id IN (SELECT id FROM {ContentModule._meta.db_table} "
    "WHERE brand_id = %s AND kind IN ({kinds}) AND id NOT IN ({bound})) AND v.state || '' = %s"
)


def placeholders(values) -> str:
    """`%s, %s, ...` for an IN list (`NULL` when empty, which matches nothing)."""
    return ", ".join(["%s"] * len(values)) or "NULL"


def _table(model) -> str:
    return model._meta.db_table


@cache
def step_sql() -> str:
    """snapshot.StepRow of one step."""
    return (
        f"SELECT s.key, s.purpose, s.layout, c.code, j.id, j.slug, j.brand_id, b.name, a.code "
        f"FROM {_table(Step)} s JOIN {_table(Journey)} j ON j.id = s.journey_id "
        f"JOIN {_table(Brand)} b ON b.id = j.brand_id "
        f"JOIN {_table(Audience)} a ON a.id = j.audience_id "
        f"JOIN {_table(Channel)} c ON c.id = s.channel_id WHERE s.id = %s")


@cache
def markets_sql() -> str:
    """snapshot.Market rows: one code and the journey's jurisdictions (journey, code, journey)."""
    markets = Journey.jurisdictions.through._meta.db_table
    return (
        f"SELECT x.code, x.legal_footer, x.id, (SELECT COUNT(*) FROM {markets} mj "
        f"WHERE mj.journey_id = %s AND mj.jurisdiction_id = x.id) FROM {_table(Jurisdiction)} x "
        f"WHERE x.code = %s OR x.id IN (SELECT jurisdiction_id FROM {markets} "
        f"WHERE journey_id = %s)")


@cache
def slots_sql() -> str:
    return (
        f'SELECT sl.id, sl."order", sl.module_id, m.code, sl.selector_kind, sl.priority, '
        f"sl.required FROM {_table(Slot)} sl "
        f"LEFT JOIN {_table(ContentModule)} m ON m.id = sl.module_id "
        f'WHERE sl.step_id = %s ORDER BY sl."order", sl.id')


def versions_sql(where: str) -> str:
    """Version metadata for each `;`-separated condition, as one UNION ALL (each part indexed)."""
    select = (f"SELECT {', '.join(VERSION_COLUMNS)} FROM {_table(ModuleVersion)} v "
              f"JOIN {_table(ContentModule)} m ON m.id = v.module_id ")
    parts = [f"{select} WHERE {condition}" for condition in where.split(";")]
    return " UNION ALL ".join(parts) + " ORDER BY 2, 6 DESC"


def content_sql(count: int) -> str:
    return (f"SELECT v.id, l.code, v.subject, v.body_html, v.body_text, v.token_fallbacks "
            f"FROM {_table(ModuleVersion)} v JOIN {_table(Locale)} l ON l.id = v.locale_id "
            f"WHERE v.id IN ({placeholders(range(count))})")


@cache
def tags_sql() -> str:
    """(version id, tag field, value, extra) over the tag tables; `{versions}` per part."""
    parts = []
    for name, (column, extra) in TAG_FIELDS.items():
        field = ModuleVersion._meta.get_field(name)
        through = field.remote_field.through._meta
        target = field.remote_field.model._meta
        source_col = through.get_field("moduleversion").column
        target_col = through.get_field(field.m2m_reverse_field_name()).column
        if column is None:
            parts.append(f"SELECT {source_col}, '{name}', CAST({target_col} AS TEXT), '' "
                         f"FROM {through.db_table} WHERE {source_col} IN ({{versions}})")
        else:
            parts.append(
                f"SELECT t.{source_col}, '{name}', x.{column}, {f'x.{extra}' if extra else chr(39) * 2} "
                f"FROM {through.db_table} t JOIN {target.db_table} x ON x.id = t.{target_col} "
                f"WHERE t.{source_col} IN ({{versions}})")
    return " UNION ALL ".join(parts)


@cache
def relations_sql() -> str:
    """(module id, "requires" | "excludes", other module id, its code); `{modules}` per part."""
    parts = []
    for name in ("requires", "excludes"):
        through = ContentModule._meta.get_field(name).remote_field.through._meta
        parts.append(
            f"SELECT t.from_contentmodule_id, '{name}', t.to_contentmodule_id, m.code "
            f"FROM {through.db_table} t JOIN {_table(ContentModule)} m "
            f"ON m.id = t.to_contentmodule_id WHERE t.from_contentmodule_id IN ({{modules}})")
    return " UNION ALL ".join(parts)
