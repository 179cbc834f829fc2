"""Database helpers shared by every app: locking, one way per backend, and a cursor for hot
statements.

- SQLite: transactions begin IMMEDIATE (`DATABASES` in settings), so a transaction holds
  the single write lock from its first statement and readers inside it see a stable
  database; nothing more is needed here.
- PostgreSQL: row locks. `values_for_share` reads rows under FOR SHARE, so concurrent
  readers do not wait for each other but a writer's FOR UPDATE waits for our commit.

The few hand-written statements on every API request's path go through `bound_cursor`:
PostgreSQL binds their parameters and, from their 5th run on a connection, keeps them
prepared. `db_value` prepares a model's values for a hand-written insert.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence

import orjson
from django.db import connection
from django.db.backends.utils import CursorWrapper
from django.db.models import Model
from psycopg.types.json import Jsonb


@functools.cache
def _postgresql_parts():
    # Imported at first use: the PostgreSQL backend is not loaded on SQLite.
    from django.db.backends.postgresql import base

    return base.ServerBindingCursor, base.register_tzloader, base.TIMESTAMPTZ_OID, base.Format.TEXT


def bound_cursor(conn=connection) -> CursorWrapper:
    """A cursor whose parameters PostgreSQL binds itself (the extended query protocol), as
    Django's own cursor with the same wrapping (errors, query logging, execute wrappers):
    for hot hand-written statements only. Django's default cursor quotes the parameters
    into the SQL text in Python and sends a simple query, which the server parses and plans
    every time: for the delivery-log statement, twice the server's CPU
    (docs/performance.md, "Server-bound hot statements"). Placeholders are `%s` either way;
    a parameter whose type the server cannot infer (NULL in a SELECT list) needs a cast.
    Elsewhere (SQLite), Django's cursor."""
    if conn.vendor != "postgresql":
        return conn.cursor()
    server_binding_cursor, register_tzloader, TIMESTAMPTZ_OID, TEXT = _postgresql_parts()
    conn.close_if_health_check_failed()
    conn.ensure_connection()
    with conn.wrap_database_errors:
        cursor = server_binding_cursor(conn.connection)
        # As Django's create_cursor: datetimes in the connection's time zone.
        if conn.connection.adapters.get_loader(TIMESTAMPTZ_OID, TEXT).timezone != conn.timezone:
            register_tzloader(conn.timezone, cursor)
        # Django's own wrapping (the last step of BaseDatabaseWrapper._cursor), so the
        # statement is counted, logged and wrapped like any other.
        return conn._prepare_cursor(cursor)


def json_dumps(value) -> bytes | str:
    """JSON for a json/jsonb parameter, by orjson (several times faster than the standard
    library on a delivery manifest); what orjson refuses (an integer beyond 64 bits) by
    the standard library, so the two fail alike. jsonb stores the same value either way."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(value)


def db_value(field, obj, conn=connection):
    """`field`'s value of the unsaved `obj` as an INSERT sends it (`pre_save` for
    auto_now_add, then `get_db_prep_save`, as bulk_create does), for hand-written inserts;
    a JSON field without its own encoder is encoded by `json_dumps`."""
    value = field.get_db_prep_save(field.pre_save(obj, True), conn)
    if isinstance(value, Jsonb) and getattr(field, "encoder", None) is None:
        return Jsonb(value.obj, dumps=json_dumps)
    return value


def values_for_share(model: type[Model], ids: Sequence[int], fields: Sequence[str]) -> list[tuple]:
    """(pk, *fields) of the given rows, read under a shared row lock where the backend has
    row locks. Call inside a transaction (the lock is held to its end)."""
    pks = sorted(set(ids))
    if not pks:
        return []
    if connection.vendor == "postgresql":
        # FOR SHARE cannot be spelled with the ORM (select_for_update is FOR UPDATE).
        quote = connection.ops.quote_name
        pk = quote(model._meta.pk.column)
        columns = ", ".join(quote(model._meta.get_field(f).column) for f in fields)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {pk}, {columns} FROM {quote(model._meta.db_table)} "
                           f"WHERE {pk} = ANY(%s) FOR SHARE", [pks])
            return cursor.fetchall()
    # SQLite: the IMMEDIATE transaction already excludes every other writer.
    return list(model._default_manager.filter(pk__in=pks).values_list("pk", *fields))
