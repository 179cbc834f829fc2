"""The catalog epoch: one counter that moves whenever anything an assembly or a channel
token's scope depends on changes, so process caches can be revalidated with one cheap read.

Caches of prepared step contexts and token scopes (delivery) key their entries by the
epoch read at the start of a request: an entry made under an older epoch is never used
again. The counter is bumped by signal receivers in the same transaction as the change
(`watch`, called from each app's `epoch_signals`), so a reader sees the change and the
new epoch together. Deliverability is still re-checked under lock at commit
(`delivery.serving.commit_deliveries`): the epoch saves work, it is not what keeps a
withdrawn version from going out.

The epoch is one row of a plain table (migration 0009), read and bumped in raw SQL: it
is on the hot path of every API request, where ORM compilation would cost more than the
query. A bump writes a fresh random 62-bit stamp rather than adding one, so the value of
a rolled-back transaction can never come back and meet a cache entry made under it (a
test database rolled back between tests reuses row ids: counters would repeat too).
Only equality is ever asked of it. Bumping is an upsert, so a missing row cannot freeze it.
"""

from __future__ import annotations

import secrets

from django.db import connections
from django.db.models.signals import m2m_changed, post_delete, post_save

from cms.db import bound_cursor

TABLE = "content_catalog_epoch"
_READ = f"SELECT value FROM {TABLE} WHERE id = 1"
_BUMP = (f"INSERT INTO {TABLE} (id, value) VALUES (1, %s) "
         "ON CONFLICT (id) DO UPDATE SET value = excluded.value")


def current(using: str = "default") -> int:
    """The epoch now (one query)."""
    with bound_cursor(connections[using]) as cursor:
        cursor.execute(_READ)
        row = cursor.fetchone()
    return row[0] if row else 0


def bump(using: str = "default") -> None:
    """Move the epoch, inside the caller's transaction when there is one."""
    with connections[using].cursor() as cursor:
        cursor.execute(_BUMP, [secrets.randbits(62) + 1])


def _on_change(sender, using="default", **kwargs) -> None:
    bump(using)


def _on_m2m_change(sender, action, using="default", **kwargs) -> None:
    if action in {"post_add", "post_remove", "post_clear"}:
        bump(using)


def watch(*models) -> None:
    """Bump the epoch on every save and delete of `models` and every change of their
    many-to-many fields (each app lists the models its assemblies or scopes read)."""
    for model in models:
        uid = f"catalog-epoch:{model._meta.label}"
        post_save.connect(_on_change, sender=model, dispatch_uid=uid + ":save", weak=False)
        post_delete.connect(_on_change, sender=model, dispatch_uid=uid + ":delete", weak=False)
        for field in model._meta.local_many_to_many:
            m2m_changed.connect(_on_m2m_change, sender=field.remote_field.through,
                                dispatch_uid=f"{uid}:{field.name}", weak=False)
