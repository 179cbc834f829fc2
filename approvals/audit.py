"""The append-only, hash-chained audit trail of workflow events.

`record(event, actor=..., target=..., data=...)` appends one entry whose hash covers its
canonical JSON and the previous entry's hash, so changing, removing or re-ordering any
entry breaks every later link. Appends are serialised: on PostgreSQL by a transaction-level
advisory lock; everywhere by the unique `seq` and `prev_hash` columns, so two writers that
read the same head cannot both append (the loser retries on the new head).

Other apps log their permission changes here too (e.g. channel tokens):
    record("channel_token_created", actor=request.user, target=token, data={"scopes": [...]})
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from .models import AuditEntry

GENESIS_HASH = "0" * 64
# Arbitrary constant naming the advisory lock that serialises chain appends on PostgreSQL.
AUDIT_CHAIN_LOCK_ID = 0x7E55E7A
APPEND_ATTEMPTS = 15


def printed_name(user) -> str:
    """The name a record keeps of a person: full name and user id (e.g. "Ann Lee (alee)")."""
    if user is None:
        return "system"
    full = user.get_full_name().strip() if hasattr(user, "get_full_name") else ""
    return f"{full} ({user.get_username()})" if full else user.get_username()


def _json_normalise(data) -> dict:
    """Round-trip through JSON so what is hashed is exactly what the JSONField stores."""
    return json.loads(json.dumps(data or {}, cls=DjangoJSONEncoder, sort_keys=True))


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def entry_payload(entry: AuditEntry) -> dict:
    """What an entry's hash covers (everything but the hash itself)."""
    return {
        "seq": entry.seq,
        "created_at": _timestamp(entry.created_at),
        "event": entry.event,
        "actor_id": entry.actor_id,
        "actor_name": entry.actor_name,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "target_repr": entry.target_repr,
        "module_code": entry.module_code,
        "data": entry.data,
        "prev_hash": entry.prev_hash,
    }


def compute_hash(entry: AuditEntry) -> str:
    blob = json.dumps(entry_payload(entry), sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _target_fields(target) -> dict:
    if target is None:
        return {"target_type": "", "target_id": "", "target_repr": "", "module_code": ""}
    module_code = ""
    module = getattr(target, "module", None)
    if module is not None and hasattr(module, "code"):
        module_code = module.code
    elif target._meta.label == "content.ContentModule":
        module_code = target.code
    version = getattr(target, "version", None)
    if not module_code and version is not None and hasattr(version, "module"):
        module_code = version.module.code
    return {
        "target_type": target._meta.label,
        "target_id": str(target.pk),
        "target_repr": str(target)[:300],
        "module_code": module_code[:40],
    }


def _lock_chain() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_CHAIN_LOCK_ID])


def record(event: str, *, actor=None, target=None, data: dict | None = None,
           module_code: str = "") -> AuditEntry:
    """Append one event to the audit chain and return the entry.

    `actor` is the person acting (None for the system: beat tasks); `target` a model
    instance (its label, pk, str and module code are kept); `data` JSON-able details — never
    recipient personal data. Runs in the caller's transaction (an entry about an action
    rolls back with it); for refusals, call it after the refused transaction.
    """
    normalised = _json_normalise(data)
    fields = _target_fields(target)
    if module_code:
        fields["module_code"] = module_code[:40]
    actor_obj = actor if getattr(actor, "pk", None) is not None else None
    last_error: IntegrityError | None = None
    for attempt in range(APPEND_ATTEMPTS):
        try:
            with transaction.atomic():
                _lock_chain()
                head = AuditEntry.objects.order_by("-seq").only("seq", "hash").first()
                entry = AuditEntry(
                    seq=(head.seq + 1) if head else 1,
                    created_at=timezone.now(),
                    event=event,
                    actor=actor_obj,
                    actor_name=printed_name(actor_obj),
                    data=normalised,
                    prev_hash=head.hash if head else GENESIS_HASH,
                    **fields,
                )
                entry.hash = compute_hash(entry)
                entry.save()
                return entry
        except IntegrityError as exc:  # another writer took this seq: retry on the new head
            last_error = exc
        except OperationalError as exc:
            # SQLite: a concurrent writer holds the database. Retry when this append is its
            # own transaction; inside a caller's transaction the caller must retry it whole.
            if "locked" not in str(exc) or connection.in_atomic_block:
                raise
            last_error = exc
            time.sleep(min(0.25, 0.02 * (attempt + 1)) + random.random() * 0.02)
    raise last_error  # type: ignore[misc]


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    entry_id: int
    reason: str

    def message(self) -> str:
        return f"audit entry #{self.seq} (id {self.entry_id}): {self.reason}"


def verify_chain(*, batch_size: int = 2000) -> tuple[int, ChainBreak | None]:
    """Walk the whole chain in order; return (entries checked, first break or None)."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    for entry in AuditEntry.objects.order_by("seq").iterator(chunk_size=batch_size):
        if entry.seq != expected_seq:
            return checked, ChainBreak(entry.seq, entry.pk,
                                       f"sequence gap: expected #{expected_seq}")
        if entry.prev_hash != expected_prev:
            return checked, ChainBreak(entry.seq, entry.pk,
                                       "previous-hash link does not match the entry before it")
        if compute_hash(entry) != entry.hash:
            return checked, ChainBreak(entry.seq, entry.pk,
                                       "content does not match its hash (entry was altered)")
        expected_prev = entry.hash
        expected_seq += 1
        checked += 1
    return checked, None
