"""A plain multi-row INSERT through the DB-API's executemany: what `bulk_create` does,
without building a model instance per row (rollups and demo data insert tens of thousands
of rows; Django's per-field preparation is most of the cost). Values are adapted by the
backend's own operations (datetimes as Django stores them), so every backend works."""

from __future__ import annotations

import datetime as dt

from django.db import connection


def insert(model, fields: list[str], rows: list[tuple], *, batch: int = 5000) -> int:
    """Insert `rows` (tuples in `fields` order; FK fields by their `_id` attname)."""
    if not rows:
        return 0
    table = model._meta.db_table
    ops = connection.ops
    columns = [model._meta.get_field(f.removesuffix("_id") if f.endswith("_id") and
                                     not _is_plain(model, f) else f).column for f in fields]
    sql = (f"INSERT INTO {ops.quote_name(table)} ({', '.join(ops.quote_name(c) for c in columns)}) "
           f"VALUES ({', '.join(['%s'] * len(columns))})")

    def adapt(v):
        if isinstance(v, dt.datetime):
            return ops.adapt_datetimefield_value(v)
        if isinstance(v, dt.date):
            return ops.adapt_datefield_value(v)
        return v

    with connection.cursor() as cursor:
        for i in range(0, len(rows), batch):
            cursor.executemany(sql, [tuple(adapt(v) for v in row) for row in rows[i:i + batch]])
    return len(rows)


def _is_plain(model, name: str) -> bool:
    try:
        model._meta.get_field(name)
        return True
    except Exception:  # noqa: BLE001 - a FK attname like "step_id" is not a field name
        return False
