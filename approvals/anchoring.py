"""Signed checkpoints of the audit chain's head, so a shortened chain is detected.

The hash chain (approvals/audit.py) shows that no entry was changed, removed from the middle
or re-ordered, but deleting the newest entries leaves a shorter chain that still links up.
A checkpoint records the head (seq and hash of the newest entry) and the entry count, sealed
with an HMAC, in the append-only `AuditCheckpoint` table and as a line in the JSON log
(`tessera.audit.anchor`), which lives outside the database. `verify_audit` then checks
every checkpoint: its HMAC, that its head entry still exists and still has the same hash.

Key: `TESSERA_AUDIT_ANCHOR_KEY` (set it, and keep it away from database administrators:
whoever holds the key and the database could rewrite the tail and re-seal checkpoints).
Without it, a key derived from SECRET_KEY (salted HMAC, salt `ANCHOR_KEY_SALT`) is used and
the checkpoint says so in `key_source`. Changing the key makes older checkpoints fail.

Written by beat every `ANCHOR_INTERVAL_SECONDS` (approvals.anchor_audit_chain) and on demand
by `manage.py verify_audit --checkpoint`.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from datetime import UTC

from django.conf import settings
from django.db.models import Count, Max
from django.utils import timezone
from django.utils.crypto import salted_hmac

from .audit import GENESIS_HASH
from .models import AuditCheckpoint, AuditEntry

logger = logging.getLogger("tessera.audit.anchor")

ANCHOR_INTERVAL_SECONDS = 15 * 60
ANCHOR_KEY_SALT = "tessera.approvals.audit-anchor"
KEY_SOURCE_SETTING = "TESSERA_AUDIT_ANCHOR_KEY"
KEY_SOURCE_DERIVED = "derived-from-SECRET_KEY"


def _key() -> tuple[str, str]:
    """(the secret, the name of where it came from)."""
    configured = getattr(settings, "TESSERA_AUDIT_ANCHOR_KEY", "") or ""
    if configured:
        return configured, KEY_SOURCE_SETTING
    return settings.SECRET_KEY, KEY_SOURCE_DERIVED


def _sealed_text(head_seq: int, head_hash: str, entry_count: int, created_at, key_source: str) -> str:
    stamp = created_at.astimezone(UTC).isoformat(timespec="microseconds")
    return f"{head_seq}|{head_hash}|{entry_count}|{stamp}|{key_source}"


def seal(head_seq: int, head_hash: str, entry_count: int, created_at, key_source: str) -> str:
    """The HMAC-SHA256 (hex) of a checkpoint's fields under the anchor key."""
    secret, _ = _key()
    text = _sealed_text(head_seq, head_hash, entry_count, created_at, key_source)
    return salted_hmac(ANCHOR_KEY_SALT, text, secret=secret, algorithm="sha256").hexdigest()


def write_checkpoint() -> AuditCheckpoint:
    """Anchor the current head: store a signed checkpoint and log it (JSON log)."""
    # One statement, so the count and the newest seq come from the same snapshot.
    head = AuditEntry.objects.aggregate(head_seq=Max("seq"), entry_count=Count("id"))
    head_seq = head["head_seq"] or 0
    head_hash = (AuditEntry.objects.filter(seq=head_seq).values_list("hash", flat=True).first()
                 if head_seq else GENESIS_HASH)
    _, key_source = _key()
    created_at = timezone.now()
    checkpoint = AuditCheckpoint.objects.create(
        head_seq=head_seq, head_hash=head_hash, entry_count=head["entry_count"],
        created_at=created_at, key_source=key_source,
        hmac=seal(head_seq, head_hash, head["entry_count"], created_at, key_source),
    )
    logger.info(
        "audit chain anchored at #%s (%s entries)", head_seq, checkpoint.entry_count,
        extra={"audit_checkpoint": {
            "id": checkpoint.pk, "head_seq": head_seq, "head_hash": head_hash,
            "entry_count": checkpoint.entry_count,
            "created_at": created_at.astimezone(UTC).isoformat(timespec="microseconds"),
            "key_source": key_source, "hmac": checkpoint.hmac,
        }},
    )
    return checkpoint


@dataclass(frozen=True)
class CheckpointBreak:
    checkpoint_id: int
    head_seq: int
    reason: str

    def message(self) -> str:
        return f"checkpoint {self.checkpoint_id} (head #{self.head_seq}): {self.reason}"


def _check(checkpoint: AuditCheckpoint, chain_head: int, head_hash_now: str | None
           ) -> CheckpointBreak | None:
    def broken(reason: str) -> CheckpointBreak:
        return CheckpointBreak(checkpoint.pk, checkpoint.head_seq, reason)

    expected = seal(checkpoint.head_seq, checkpoint.head_hash, checkpoint.entry_count,
                    checkpoint.created_at, checkpoint.key_source)
    if not hmac.compare_digest(expected, checkpoint.hmac):
        return broken("its HMAC does not match (forged or altered checkpoint, or the anchor "
                      f"key changed; sealed with {checkpoint.key_source})")
    if checkpoint.entry_count != checkpoint.head_seq:
        return broken(f"it counts {checkpoint.entry_count} entries for a head at "
                      f"#{checkpoint.head_seq} (the chain had a gap when it was anchored)")
    if checkpoint.head_seq > chain_head:
        first_missing = chain_head + 1
        span = (f"#{first_missing}" if first_missing == checkpoint.head_seq
                else f"#{first_missing}..#{checkpoint.head_seq}")
        return broken(f"entries {span} are missing: the chain ends at #{chain_head} "
                      "(newest entries deleted)")
    if checkpoint.head_seq and head_hash_now != checkpoint.head_hash:
        return broken(f"entry #{checkpoint.head_seq} has hash {head_hash_now}, the checkpoint "
                      f"anchored {checkpoint.head_hash} (entries from there on were replaced)")
    return None


def verify_checkpoints(*, batch_size: int = 2000) -> tuple[int, CheckpointBreak | None]:
    """Check every checkpoint against the chain as stored now; (checked, first break or None).

    Run it after `verify_chain` passed: the chain then links #1..#head, so an anchored head
    entry that is present with the same hash vouches for every entry up to it.
    """
    chain_head = AuditEntry.objects.aggregate(head=Max("seq"))["head"] or 0
    checked = 0
    batch: list[AuditCheckpoint] = []

    def flush_batch() -> CheckpointBreak | None:
        nonlocal checked
        seqs = {c.head_seq for c in batch if c.head_seq}
        hashes = dict(AuditEntry.objects.filter(seq__in=seqs).values_list("seq", "hash"))
        for checkpoint in batch:
            problem = _check(checkpoint, chain_head, hashes.get(checkpoint.head_seq))
            if problem is not None:
                return problem
            checked += 1
        batch.clear()
        return None

    for checkpoint in AuditCheckpoint.objects.order_by("id").iterator(chunk_size=batch_size):
        batch.append(checkpoint)
        if len(batch) >= batch_size and (problem := flush_batch()) is not None:
            return checked, problem
    if batch and (problem := flush_batch()) is not None:
        return checked, problem
    return checked, None
