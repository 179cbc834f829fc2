"""Serving assembled content to channels: assemble, re-check under lock, log the delivery.

`serve_one` (single assembly) and the batch chunks both end in `commit_deliveries`, which,
inside the caller's transaction, locks the module version rows used (FOR SHARE on
PostgreSQL, so concurrent assemblies do not wait for each other but a withdrawal's
FOR UPDATE does) and refuses anything no longer approved. A withdrawal that committed
before that check stops the content; one that commits after it waits for our commit — the
content was delivered before the withdrawal, and the delivery log says so.

The delivery log keeps the manifest (versions, signatures, layout, hashes), the channel,
token and time, and a keyed hash of the recipient id — never recipient data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from content.models import ModuleVersion, VersionState
from journeys.assembly import AssemblyError, AssemblyResult, load_context
from journeys.engagement import mark_seen
from journeys.models import Enrollment, Step, pseudonymous_id

from .models import DeliveredVersion, Delivery
from .tokens import ChannelClient


@dataclass(frozen=True)
class Caller:
    """Who is served: a channel token or a person (for the delivery log)."""

    token_id: int | None
    user_id: int | None

    @classmethod
    def of(cls, user) -> Caller:
        if isinstance(user, ChannelClient):
            return cls(token_id=user.token_id, user_id=None)
        return cls(token_id=None, user_id=getattr(user, "pk", None))


def begin_write() -> None:
    """Call first in a transaction that reads and then writes.

    SQLite starts transactions deferred: a read takes a shared lock, and upgrading it to
    write while another process writes fails at once ("database is locked") instead of
    waiting. A no-op UPDATE as the first statement takes the write lock up front, so the
    busy timeout applies. PostgreSQL needs nothing (row locks do the work)."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {Delivery._meta.db_table} SET id = id WHERE 0")


def used_version_ids(result: AssemblyResult) -> list[int]:
    return [m["version_id"] for m in result.manifest.get("modules", [])]


def lock_versions(version_ids: Sequence[int]) -> dict[int, tuple[str, object]]:
    """State and expiry of the versions, read under a shared row lock where supported."""
    ids = sorted(set(version_ids))
    if not ids:
        return {}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, state, expires_at FROM {ModuleVersion._meta.db_table} "
                "WHERE id = ANY(%s) FOR SHARE", [ids])
            rows = cursor.fetchall()
    else:
        # SQLite serialises writers; the read inside the write transaction is enough.
        rows = ModuleVersion.objects.filter(pk__in=ids).values_list("id", "state", "expires_at")
    return {pk: (state, expires) for pk, state, expires in rows}


def recheck(result: AssemblyResult, states: Mapping[int, tuple[str, object]], now) -> list[AssemblyError]:
    """Refusals for versions that stopped being deliverable since they were read."""
    errors = []
    for module in result.manifest.get("modules", []):
        state, expires_at = states.get(module["version_id"], (None, None))
        label = f"{module['module']} v{module['version']}"
        if state == VersionState.WITHDRAWN:
            errors.append(AssemblyError("withdrawn", f"{label} was withdrawn.", module["module"]))
        elif state == VersionState.EXPIRED or (expires_at is not None and expires_at <= now):
            errors.append(AssemblyError("expired", f"The approval of {label} expired.",
                                        module["module"]))
        elif state != VersionState.APPROVED:
            errors.append(AssemblyError("not_approved", f"{label} is no longer approved.",
                                        module["module"]))
    return errors


def commit_deliveries(items: Sequence[tuple[AssemblyResult, str]], *, caller: Caller,
                      job_id=None) -> list[list[AssemblyError]]:
    """Inside the caller's transaction: re-check every successful result under lock and log
    the ones still deliverable. Returns, per item, the errors that now refuse it ([] = ok).

    `items` pairs each result with the channel's recipient id (hashed here, never stored).
    """
    assert connection.in_atomic_block, "call inside transaction.atomic()"
    now = timezone.now()
    states = lock_versions([vid for result, _ in items if result.ok
                            for vid in used_version_ids(result)])
    refusals: list[list[AssemblyError]] = []
    deliveries: list[Delivery] = []
    for result, recipient_id in items:
        if not result.ok:
            refusals.append(list(result.errors))
            continue
        errors = recheck(result, states, now)
        refusals.append(errors)
        if errors:
            continue
        manifest = result.manifest
        deliveries.append(Delivery(
            served_at=now, channel=manifest["channel"], jurisdiction=manifest["jurisdiction"],
            locale=manifest["locale"], journey_slug=manifest["journey"],
            step_key=manifest["step"], token_id=caller.token_id, user_id=caller.user_id,
            job_id=job_id, recipient_pseudonym=pseudonymous_id(recipient_id),
            layout=f"{manifest['layout']['name']}:{manifest['layout']['sha256'][:12]}",
            output_sha256=manifest["output_sha256"], manifest=manifest,
        ))
    if deliveries:
        created = Delivery.objects.bulk_create(deliveries)
        DeliveredVersion.objects.bulk_create([
            DeliveredVersion(delivery=d, version_id=m["version_id"], channel=d.channel,
                             jurisdiction=d.jurisdiction)
            for d in created for m in d.manifest.get("modules", [])
        ])
    return refusals


def refused(result: AssemblyResult, errors: list[AssemblyError]) -> AssemblyResult:
    return AssemblyResult(ok=False, manifest={k: v for k, v in result.manifest.items()
                                              if k not in {"output_sha256", "recipient_sha256"}},
                          errors=errors)


def serve_one(step: Step, recipient: Mapping, *, channel: str, jurisdiction: str, locale: str,
              caller: Caller) -> AssemblyResult:
    """Assemble for one recipient and log it; a refusal lists every reason.

    When the recipient is enrolled in the journey, selector slots skip the modules they
    were already served, and what this delivery contained is remembered for next time.
    Writes history-tracked Enrollment rows: token callers wrap this in `history_as_system`.
    """
    recipient_id = str(recipient.get("id", ""))
    enrollment = Enrollment.objects.filter(
        journey_id=step.journey_id, recipient_hash=pseudonymous_id(recipient_id)).first()
    result = load_context(step, channel=channel, jurisdiction=jurisdiction, locale=locale
                          ).assemble(recipient, seen=enrollment.seen_module_ids if enrollment else ())
    if not result.ok:
        return result
    with transaction.atomic():
        begin_write()
        errors = commit_deliveries([(result, recipient_id)], caller=caller)[0]
        if not errors and enrollment is not None:
            mark_seen(enrollment, ModuleVersion.objects.filter(
                pk__in=used_version_ids(result)).values_list("module_id", flat=True))
    return refused(result, errors) if errors else result
