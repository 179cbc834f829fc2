"""The module list of a channel token in prepared SQL: no ORM compilation on the first page.

A channel token's visible versions (`ModuleVersion.objects.restrict(client, "view")`:
deliverable now, tagged with one of its channels and one of its jurisdictions) filtered by
the list's django-filter parameters compile, through the ORM, into nested EXISTS
subqueries — about two thirds of an uncached page's time in process. Here the same rule is
SQL text built once per *shape* (database vendor, how many channels and jurisdictions the
token has, which filters are given) and kept in `STATEMENTS`; a request only binds its
values. Four statements per page, as the ORM path: the count, the page of modules, their
versions, their tags (`selectors._tags_for`).

What stays the one source of each rule:
- deliverability: `content.deliverability` (`APPROVED`, `valid_from <= now`,
  `expires_at > now`; tests/api/test_modules_prepared.py compares both paths on versions
  before, inside and after their windows, withdrawn, expired and drafts);
- the filters' parsing and validation: the FilterSet's own form
  (`content.api.filters.ModuleVersionFilter`), so a bad value is the same 400 and
  `jurisdiction` is upper-cased the same way; every filter of the FilterSet must have its
  SQL here (`SUPPORTED`; the view falls back to the ORM path otherwise);
- ordering (module code) and pagination (DRF's PageNumberPagination over `ModuleRows`);
- the output shape: `content.api.serializers.ModuleSerializer`. `render` writes the same
  JSON values without DRF's per-field machinery (which was ~70 % of a prepared page's
  time in process under cProfile); the equality test above covers it, and
  `MODULE_OUTPUT` / `VERSION_OUTPUT` name the serializers' fields in order (tested).

People's lists follow their permissions (django-guardian), not a scope: they keep the ORM.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.utils import timezone
from django_filters.constants import EMPTY_VALUES
from rest_framework import serializers as drf

from cms.lru import LRUCache
from content.models import Brand, ContentModule, Locale, ModuleVersion, VersionState

from . import selectors
from .filters import ModuleVersionFilter

# Filters on a version's many-to-many tags: name → the ModuleVersion field.
TAG_FILTERS = {"audience": "audiences", "stage": "stages", "jurisdiction": "jurisdictions",
               "channel": "channels"}
VERSION_FILTERS = (*TAG_FILTERS, "locale", "state")
MODULE_FILTERS = ("kind", "brand")
SUPPORTED = set(ModuleVersionFilter.base_filters) == {*VERSION_FILTERS, *MODULE_FILTERS}

# The FilterSet's form class, built once (django-filter builds it per FilterSet instance).
FORM = ModuleVersionFilter(queryset=ModuleVersion.objects.none()).get_form_class()

VERSION_COLUMNS = ("id", "module_id", "number", "state", "locale__code", "valid_from",
                   "expires_at", "approved_at", "sha256")


@dataclass(frozen=True)
class Statements:
    count: str
    page: str
    versions: str  # with {ids}: the placeholders of the page's module ids


STATEMENTS = LRUCache(256, name="content.module_list_statements")


def _tag_exists(accessor: str, values: int, qn) -> str:
    """EXISTS: version v is tagged with a term of `accessor` whose code is one of `values`
    placeholders (one: `=`)."""
    field = ModuleVersion._meta.get_field(accessor)
    through = field.remote_field.through._meta.db_table
    target = field.related_model._meta.db_table
    if values == 0:  # a token with no channel (or jurisdiction) sees nothing
        return "1 = 0"
    test = "= %s" if values == 1 else f"IN ({', '.join(['%s'] * values)})"
    return (f"EXISTS (SELECT 1 FROM {qn(through)} t JOIN {qn(target)} x "
            f"ON x.{qn('id')} = t.{qn(field.m2m_reverse_name())} "
            f"WHERE t.{qn(field.m2m_column_name())} = v.{qn('id')} AND x.{qn('code')} {test})")


def build_statements(vendor: str, channels: int, jurisdictions: int,
                     given: tuple[str, ...]) -> Statements:
    """The SQL of one scope shape. Parameters, in order: versions' conditions (approved,
    now, now, the channels, the jurisdictions, the version filters in VERSION_FILTERS
    order), then the module filters (MODULE_FILTERS order); the page adds LIMIT, OFFSET;
    the versions statement takes the page's module ids first."""
    qn = connection.ops.quote_name
    version_table = qn(ModuleVersion._meta.db_table)
    conditions = [
        f"v.{qn('state')} = %s",
        f"(v.{qn('valid_from')} IS NULL OR v.{qn('valid_from')} <= %s)",
        f"(v.{qn('expires_at')} IS NULL OR v.{qn('expires_at')} > %s)",
        _tag_exists("channels", channels, qn),
        _tag_exists("jurisdictions", jurisdictions, qn),
    ]
    for name in VERSION_FILTERS:
        if name not in given:
            continue
        if name in TAG_FILTERS:
            conditions.append(_tag_exists(TAG_FILTERS[name], 1, qn))
        elif name == "locale":
            conditions.append(f"EXISTS (SELECT 1 FROM {qn(Locale._meta.db_table)} lf "
                              f"WHERE lf.{qn('id')} = v.{qn('locale_id')} "
                              f"AND lf.{qn('code')} = %s)")
        else:  # state
            conditions.append(f"v.{qn('state')} = %s")
    version_where = " AND ".join(conditions)
    module_where = [f"EXISTS (SELECT 1 FROM {version_table} v "
                    f"WHERE v.{qn('module_id')} = m.{qn('id')} AND {version_where})"]
    if "kind" in given:
        module_where.append(f"m.{qn('kind')} = %s")
    if "brand" in given:
        module_where.append(f"m.{qn('brand_id')} IN (SELECT bf.{qn('id')} FROM "
                            f"{qn(Brand._meta.db_table)} bf WHERE bf.{qn('slug')} = %s)")
    where = " AND ".join(module_where)
    modules = qn(ContentModule._meta.db_table)
    columns = ", ".join(f"m.{qn(c)}" for c in ("id", "code"))
    rest = ", ".join(f"m.{qn(c)}" for c in ("kind", "purpose", "title"))
    version_columns = ", ".join(
        "l." + qn("code") if c == "locale__code" else "v." + qn(c) for c in VERSION_COLUMNS)
    return Statements(
        count=f"SELECT COUNT(*) FROM {modules} m WHERE {where}",
        page=(f"SELECT {columns}, b.{qn('slug')}, {rest} FROM {modules} m "
              f"JOIN {qn(Brand._meta.db_table)} b ON b.{qn('id')} = m.{qn('brand_id')} "
              f"WHERE {where} ORDER BY m.{qn('code')} LIMIT %s OFFSET %s"),
        versions=(f"SELECT {version_columns} FROM {version_table} v "
                  f"JOIN {qn(Locale._meta.db_table)} l ON l.{qn('id')} = v.{qn('locale_id')} "
                  f"WHERE v.{qn('module_id')} IN ({{ids}}) AND {version_where} "
                  f"ORDER BY v.{qn('module_id')}, v.{qn('number')}"),
    )


def statements(vendor: str, channels: int, jurisdictions: int,
               given: tuple[str, ...]) -> Statements:
    key = (vendor, channels, jurisdictions, given)
    found = STATEMENTS.get(key)
    if found is None:
        found = build_statements(vendor, channels, jurisdictions, given)
        STATEMENTS.put(key, found)
    return found


_CONVERTERS: dict[str, list] = {}


def _datetime_converters() -> list:
    """What the ORM applies to a DateTimeField value read from this database (SQLite: text
    to an aware datetime; PostgreSQL: nothing), once per vendor."""
    found = _CONVERTERS.get(connection.vendor)
    if found is None:
        field = ModuleVersion._meta.get_field("valid_from")
        column = field.get_col(ModuleVersion._meta.db_table)
        found = [(c, column) for c in (connection.ops.get_db_converters(column)
                                       + field.get_db_converters(connection))]
        _CONVERTERS[connection.vendor] = found
    return found


def approved_windows() -> list[tuple]:
    """(valid_from, expires_at) of every approved version, as the ORM would read them."""
    qn = connection.ops.quote_name
    converters = _datetime_converters()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {qn('valid_from')}, {qn('expires_at')} FROM "
                       f"{qn(ModuleVersion._meta.db_table)} WHERE {qn('state')} = %s",
                       [VersionState.APPROVED])
        rows = cursor.fetchall()
    out = []
    for row in rows:
        values = list(row)
        for i, value in enumerate(values):
            for convert, column in converters:
                value = convert(value, column, connection)
            values[i] = value
        out.append(tuple(values))
    return out


class ModuleRows:
    """The scope's modules, ordered by code, as Django's Paginator reads an object list:
    `count()` and a slice (one statement each)."""

    def __init__(self, found: Statements, version_params: list, module_params: list):
        self.statements = found
        self.version_params = version_params
        self.params = version_params + module_params

    def count(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute(self.statements.count, self.params)
            return cursor.fetchone()[0]

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, bounds: slice) -> list[dict]:
        start, stop = bounds.start or 0, bounds.stop
        if stop is not None and stop <= start:
            return []
        limit = -1 if stop is None else stop - start
        if limit < 0 and connection.vendor == "postgresql":
            limit = None  # LIMIT NULL is no limit there; SQLite takes -1
        with connection.cursor() as cursor:
            cursor.execute(self.statements.page, [*self.params, limit, start])
            return [dict(zip(selectors.MODULE_FIELDS, row, strict=True))
                    for row in cursor.fetchall()]

    def versions(self, modules: list[dict]) -> list[dict]:
        """The visible versions of `modules`, as `selectors.version_dicts` gives them."""
        ids = [m["id"] for m in modules]
        if not ids:
            return []
        sql = self.statements.versions.format(ids=", ".join(["%s"] * len(ids)))
        converters = _datetime_converters()
        rows = []
        with connection.cursor() as cursor:
            cursor.execute(sql, [*ids, *self.version_params])
            for row in cursor.fetchall():
                item = dict(zip(VERSION_COLUMNS, row, strict=True))
                for name in ("valid_from", "expires_at", "approved_at"):
                    for convert, column in converters:
                        item[name] = convert(item[name], column, connection)
                rows.append(item)
        return selectors.version_items(rows)


def module_rows(client, cleaned: dict) -> ModuleRows:
    """The rows a channel client sees under the cleaned filter values (the FilterSet
    form's `cleaned_data`)."""
    given = []
    values = {}
    for name in (*VERSION_FILTERS, *MODULE_FILTERS):
        value = cleaned.get(name)
        if value in EMPTY_VALUES:
            continue
        given.append(name)
        values[name] = value.upper() if name == "jurisdiction" else value
    channels, jurisdictions = sorted(client.channels), sorted(client.jurisdictions)
    found = statements(connection.vendor, len(channels), len(jurisdictions), tuple(given))
    now = ModuleVersion._meta.get_field("valid_from").get_db_prep_value(
        timezone.now(), connection)
    version_params = [VersionState.APPROVED, now, now, *channels, *jurisdictions,
                      *(values[n] for n in VERSION_FILTERS if n in values)]
    module_params = [values[n] for n in MODULE_FILTERS if n in values]
    return ModuleRows(found, version_params, module_params)


# What ModuleSerializer / VersionSummarySerializer render, in their order.
MODULE_OUTPUT = ("code", "brand", "kind", "purpose", "title", "versions")
VERSION_OUTPUT = ("number", "state", "locale", "valid_from", "expires_at", "approved_at",
                  "sha256", "audiences", "specialties", "stages", "jurisdictions", "channels")
_DATETIME = drf.DateTimeField()  # the serializers' own conversion of datetimes
_DATETIMES = ("valid_from", "expires_at", "approved_at")
_LISTS = tuple(selectors.TAGS)


def render(modules: list[dict]) -> list[dict]:
    """Module dicts (`selectors.with_versions`) as ModuleSerializer(many=True).data renders
    them: strings as str, numbers as int, datetimes by DRF's DateTimeField, None kept."""
    out = []
    for module in modules:
        versions = []
        for v in module["versions"]:
            item = {"number": int(v["number"]), "state": str(v["state"]),
                    "locale": str(v["locale"])}
            for name in _DATETIMES:
                value = v[name]
                item[name] = None if value is None else _DATETIME.to_representation(value)
            item["sha256"] = str(v["sha256"])
            for name in _LISTS:
                item[name] = [str(code) for code in v[name]]
            versions.append(item)
        out.append({"code": str(module["code"]), "brand": str(module["brand"]),
                    "kind": str(module["kind"]), "purpose": str(module["purpose"]),
                    "title": str(module["title"]), "versions": versions})
    return out
