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

from ..models import EngagementEvent, Enrollment, Journey, Slot, Step

# snapshot.VersionRow's fields, in order.
VERSION_COLUMNS = (
    "v.id", "v.module_id", "m.code", "m.kind", "m.purpose", "v.number", "v.state", "v.sha256",
    "v.valid_from", "v.expires_at", "v.approved_at", "v.withdrawn_at", "v.asset_id",
    "v.created_at",
)
# Tag field of ModuleVersion -> (value, extra) columns of its rows in the tag read, over
# the target table `x` (and a stage's audience `a`): what the rules match on and what the
# signed hash covers (codes, not ids). Every column is text.
TAG_FIELDS = {
    "audiences": ("x.code", "''"),
    "jurisdictions": ("x.code", "''"),
    "channels": ("x.code", "''"),
    "stages": ("CAST(x.id AS TEXT)", "a.code || ':' || x.code"),
    "specialties": ("x.code", "x.name"),
    "citations": ("x.code", "x.citation"),
    "requires": ("CAST(x.id AS TEXT)", "x.code"),
    "excludes": ("CAST(x.id AS TEXT)", "x.code"),
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
        f"SELECT x.code, x.id, (SELECT COUNT(*) FROM {markets} mj "
        f"WHERE mj.journey_id = %s AND mj.jurisdiction_id = x.id) FROM {_table(Jurisdiction)} x "
        f"WHERE x.code = %s OR x.id IN (SELECT jurisdiction_id FROM {markets} "
        f"WHERE journey_id = %s)")


@cache
def slots_sql() -> str:
    return (
        f'SELECT sl.id, sl."order", sl.module_id, m.code, sl.selector_kind, sl.priority, '
        f"sl.required, sl.ranking FROM {_table(Slot)} sl "
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
    """(version id, tag field, value, extra) over the tag, citation, companion and exclusion
    tables (`TAG_FIELDS`); `{versions}` per part."""
    parts = []
    for name, (value, extra) in TAG_FIELDS.items():
        field = ModuleVersion._meta.get_field(name)
        through = field.remote_field.through._meta
        target = field.remote_field.model._meta
        source_col = through.get_field(field.m2m_field_name()).column
        target_col = through.get_field(field.m2m_reverse_field_name()).column
        audience = (f"JOIN {_table(Audience)} a ON a.id = x.audience_id "
                    if name == "stages" else "")
        parts.append(
            f"SELECT t.{source_col}, '{name}', {value}, {extra} "
            f"FROM {through.db_table} t JOIN {target.db_table} x ON x.id = t.{target_col} "
            f"{audience}WHERE t.{source_col} IN ({{versions}})")
    return " UNION ALL ".join(parts)


# --- Next-best content (`ranking.py`): read only for steps with a slot that ranks -------


@cache
def journey_slots_sql() -> str:
    """(step id, bound module id or NULL, selector kind) of every slot of a journey."""
    return (f"SELECT sl.step_id, sl.module_id, sl.selector_kind FROM {_table(Slot)} sl "
            f"JOIN {_table(Step)} s ON s.id = sl.step_id WHERE s.journey_id = %s")


def topics_sql(bound: int, kinds: int, states: int, skipped: int) -> str:
    """(version id, module id, topic type, topic value, label) of the locked versions of
    the bound modules and of the brand's modules of the selector kinds, skipping the kinds
    that travel with everything. Params per part: states, skipped kinds, bound module ids,
    brand id, kinds — three parts (stages, specialties, the module's kind)."""
    version = ModuleVersion._meta
    where = (f"v.state IN ({placeholders(range(states))}) "
             f"AND m.kind NOT IN ({placeholders(range(skipped))}) "
             f"AND (v.module_id IN ({placeholders(range(bound))}) "
             f"OR (m.brand_id = %s AND m.kind IN ({placeholders(range(kinds))})))")
    base = (f"FROM {_table(ModuleVersion)} v JOIN {_table(ContentModule)} m ON m.id = v.module_id ")
    parts = []
    for name, value, label, extra in (
            ("stages", "a.code || ':' || x.code", "x.name",
             f"JOIN {_table(Audience)} a ON a.id = x.audience_id "),
            ("specialties", "x.code", "x.name", "")):
        field = version.get_field(name)
        through = field.remote_field.through._meta
        source = through.get_field(field.m2m_field_name()).column
        target = through.get_field(field.m2m_reverse_field_name()).column
        parts.append(
            f"SELECT v.id, v.module_id, '{field.name}', {value}, {label} {base}"
            f"JOIN {through.db_table} t ON t.{source} = v.id "
            f"JOIN {field.remote_field.model._meta.db_table} x ON x.id = t.{target} {extra}"
            f"WHERE {where}")
    parts.append(f"SELECT v.id, v.module_id, 'kind', m.kind, m.kind {base}WHERE {where}")
    return " UNION ALL ".join(parts)


def profiles_sql(recipients: int, events: int) -> str:
    """(recipient hash, seen module ids, step id, event type, count) of the journey's
    enrollments with these pseudonyms: one row per step and engaged event type (step NULL
    when the enrollment has none). Params: event types, journey id, pseudonyms."""
    return (
        f"SELECT n.recipient_hash, n.seen_module_ids, e.step_id, e.event_type, COUNT(e.id) "
        f"FROM {_table(Enrollment)} n LEFT JOIN {_table(EngagementEvent)} e "
        f"ON e.enrollment_id = n.id AND e.event_type IN ({placeholders(range(events))}) "
        f"WHERE n.journey_id = %s AND n.recipient_hash IN ({placeholders(range(recipients))}) "
        f"GROUP BY n.id, n.recipient_hash, e.step_id, e.event_type")
