"""Database locking shared by every app, one way per backend.

- SQLite: transactions begin IMMEDIATE (`DATABASES` in settings), so a transaction holds
  the single write lock from its first statement and readers inside it see a stable
  database; nothing more is needed here.
- PostgreSQL: row locks. `values_for_share` reads rows under FOR SHARE, so concurrent
  readers do not wait for each other but a writer's FOR UPDATE waits for our commit.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection
from django.db.models import Model


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
