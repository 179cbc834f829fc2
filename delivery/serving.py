"""Serving assembled content to channels: assemble, re-check under lock, log the delivery.

Every way content goes out — the assemble endpoint (`serve_one`), the batch jobs' chunks
and the `assemble_batch` command (`serve_many`) — ends in `commit_deliveries`, which, inside
the caller's transaction, locks the module version rows used (FOR SHARE on PostgreSQL, so
concurrent assemblies do not wait for each other but a withdrawal's FOR UPDATE does; on
SQLite the IMMEDIATE transaction excludes every other writer) and refuses anything no
longer deliverable by the one rule in `content.deliverability`. A withdrawal that
committed before that check stops the content; one that commits after it waits for our
commit — the content was delivered before the withdrawal, and the delivery log says so.

A warm single assembly on PostgreSQL does the same in ONE statement, as its own
transaction (`log_one_if_deliverable`: lock FOR SHARE, insert only if every version is
deliverable by the same rule's SQL form, return the locked states).

The delivery log keeps the manifest (versions, signatures, layout, hashes), the channel,
token and time, and a keyed hash of the recipient id — never recipient data. The first US
delivery of a promotional version is its FDA Form 2253 date of first use (one statement).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice

from django.db import connection, transaction
from django.db.models.sql import InsertQuery
from django.utils import timezone

from approvals import form_2253
from cms.api.auth import ChannelClient
from cms.db import bound_cursor, db_value, values_for_share
from cms.lru import LRUCache
from content import catalog_epoch
from content.deliverability import deliverable_q, refusals
from content.models import ModuleVersion
from journeys.assembly import (
    AssemblyError,
    AssemblyResult,
    StepContext,
    assemble_many,
    load_context,
)
from journeys.assembly.manifest import iso
from journeys.engagement import mark_seen
from journeys.models import Enrollment, Step, pseudonymous_id

from .models import DeliveredVersion, Delivery

# Recipients per transaction in `serve_many` (and per re-read of version states).
SERVE_CHUNK = 200
VersionStates = Mapping[int, tuple]  # version id -> (state, valid_from, expires_at, withdrawn_at)

# Prepared step contexts of single assemblies, by (step, channel, jurisdiction, locale,
# layout, catalog epoch): any change that can alter the assembly moves the epoch, so an
# entry is used only while nothing it read has changed. It is also used only until the
# first validity boundary of a version it read, the new year, or CONTEXT_TTL (its rules
# were checked at its build time); `commit_deliveries` still re-checks every version
# under lock at the real time, so a cached context can never deliver a withdrawn or
# expired version.
CONTEXTS = LRUCache(1024, name="delivery.step_contexts")
CONTEXT_TTL = timedelta(seconds=30)


@dataclass(frozen=True)
class Caller:
    """Who is served: a channel token or a person (for the delivery log). Neither (both
    None) is an operator at the shell (`assemble_batch`)."""

    token_id: int | None
    user_id: int | None

    @classmethod
    def of(cls, user) -> Caller:
        if isinstance(user, ChannelClient):
            return cls(token_id=user.token_id, user_id=None)
        return cls(token_id=None, user_id=getattr(user, "pk", None))


# An operator at the shell (`assemble_batch`, the demo's deliveries): no token, no person.
OPERATOR = Caller(token_id=None, user_id=None)


def used_version_ids(result: AssemblyResult) -> list[int]:
    return [m["version_id"] for m in result.manifest.get("modules", [])]


def lock_versions(version_ids: Sequence[int]) -> VersionStates:
    """What deliverability depends on, for the versions, read under a shared row lock."""
    rows = values_for_share(ModuleVersion, version_ids,
                            ("state", "valid_from", "expires_at", "withdrawn_at"))
    return {pk: tuple(rest) for pk, *rest in rows}


def recheck(result: AssemblyResult, states: VersionStates, now) -> list[AssemblyError]:
    """Refusals for versions that stopped being deliverable since they were read."""
    errors = []
    for module in result.manifest.get("modules", []):
        state, valid_from, expires_at, withdrawn_at = states.get(
            module["version_id"], (None, None, None, None))
        for refusal in refusals(label=f"{module['module']} v{module['version']}",
                                state=state or "missing", valid_from=valid_from,
                                expires_at=expires_at, withdrawn_at=withdrawn_at, now=now):
            errors.append(AssemblyError(refusal.code, refusal.detail, module["module"]))
    return errors


def commit_deliveries(items: Sequence[tuple[AssemblyResult, str]], *, caller: Caller,
                      job_id=None, epoch: int | None = None) -> list[list[AssemblyError]]:
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
        deliveries.append(delivery_row(result, recipient_id, caller=caller, job_id=job_id,
                                       now=now))
    if deliveries:
        log_deliveries(deliveries)
        first_uses = {pk for d in deliveries for pk in first_use_candidates(d.manifest)}
        form_2253.record_first_uses(unrecorded_first_uses(first_uses, epoch),
                                    jurisdiction=form_2253.JURISDICTION, at=now)
    return refusals


def delivery_row(result: AssemblyResult, recipient_id: str, *, caller: Caller, job_id=None,
                 now: datetime) -> Delivery:
    """The delivery log's row for a result served at `now` (unsaved)."""
    manifest = result.manifest
    return Delivery(
        served_at=now, channel=manifest["channel"], jurisdiction=manifest["jurisdiction"],
        locale=manifest["locale"], journey_slug=manifest["journey"],
        step_key=manifest["step"], token_id=caller.token_id, user_id=caller.user_id,
        job_id=job_id, recipient_pseudonym=pseudonymous_id(recipient_id),
        layout=f"{manifest['layout']['name']}:{manifest['layout']['sha256'][:12]}",
        output_sha256=manifest["output_sha256"], manifest=manifest,
    )


def first_use_candidates(manifest: Mapping) -> set[int]:
    """Versions of a delivery whose US delivery is an FDA Form 2253 first use."""
    if manifest.get("jurisdiction") != form_2253.JURISDICTION:
        return set()
    return {m["version_id"] for m in manifest.get("modules", [])
            if form_2253.needs_form_2253(m.get("purpose", ""), m.get("kind", ""))}


# US first uses this process saw committed, by (version, catalog epoch): first-use rows
# are append-only, so a version recorded once need not be inserted again on every
# delivery; keyed by the epoch so that a restored or rolled-back database is asked again.
RECORDED_FIRST_USES = LRUCache(20_000, name="delivery.recorded_first_uses")


def unrecorded_first_uses(version_ids: set[int], epoch: int | None = None) -> set[int]:
    if not version_ids:
        return version_ids
    epoch = catalog_epoch.current() if epoch is None else epoch
    unrecorded = {pk for pk in version_ids if RECORDED_FIRST_USES.get((pk, epoch)) is None}

    def remember():
        for pk in unrecorded:
            RECORDED_FIRST_USES.put((pk, epoch), True)
    transaction.on_commit(remember)
    return unrecorded


# content.deliverability's rule in its SQL form (deliverable_q), compiled once per process
# with a stand-in time that each statement replaces by its own.
_RULE_TIME = datetime(1970, 1, 1, 0, 0, 0, 123457, tzinfo=UTC)


@functools.cache
def _compiled_rule(vendor: str) -> tuple[str, tuple]:
    """The rule's WHERE clause and parameters for `vendor` (the current connection's)."""
    query = ModuleVersion.objects.filter(deliverable_q(_RULE_TIME)).query
    sql, params = query.where.as_sql(query.get_compiler(connection=connection), connection)
    return sql, tuple(params)


def _deliverable_sql(now: datetime) -> tuple[str, list]:
    sql, params = _compiled_rule(connection.vendor)
    return sql, [now if p == _RULE_TIME else p for p in params]


class RuleFormsDisagree(RuntimeError):
    """The SQL form and the Python form of the deliverability rule judged one delivery
    differently: never expected (tests/delivery/test_serve_one_statement.py)."""


_DELIVERY_FIELDS = [f for f in Delivery._meta.local_concrete_fields if not f.primary_key]


@functools.cache  # by the rule's SQL: built once per process
def _log_one_sql(rule: str) -> str:
    """`log_one_if_deliverable`'s statement around the deliverability rule's SQL `rule`.
    Bound by the server (`bound_cursor`, and prepared from its 5th run on a connection):
    each value of the delivery's SELECT list names its column's type."""
    quote_name = connection.ops.quote_name
    versions = quote_name(ModuleVersion._meta.db_table)
    columns = ", ".join(quote_name(f.column) for f in _DELIVERY_FIELDS)
    casts = ", ".join(f"CAST(%s AS {f.db_type(connection)})" for f in _DELIVERY_FIELDS)
    return (
        f"WITH locked AS MATERIALIZED ("
        f"SELECT {versions}.id, state, valid_from, expires_at, withdrawn_at, ({rule}) AS ok "
        f"FROM {versions} WHERE {versions}.id = ANY(%s) FOR SHARE), "
        f"d AS (INSERT INTO {quote_name(Delivery._meta.db_table)} ({columns}) "
        f"SELECT {casts} "
        f"WHERE (SELECT count(*) FROM locked WHERE ok) = %s RETURNING id), "
        f"v AS (INSERT INTO {quote_name(DeliveredVersion._meta.db_table)} "
        f"(delivery_id, version_id, channel, jurisdiction) "
        f"SELECT d.id, x.id, %s::text, %s::text FROM d CROSS JOIN unnest(%s::bigint[]) AS x(id)) "
        f"SELECT locked.id, state, valid_from, expires_at, withdrawn_at, (SELECT id FROM d) "
        f"FROM locked")


def log_one_if_deliverable(result: AssemblyResult, recipient_id: str, *, caller: Caller,
                           now: datetime) -> list[AssemblyError]:
    """PostgreSQL: the re-check and the delivery log of one served result in ONE statement
    (its own transaction unless the caller opened one): the versions are locked FOR SHARE,
    and the delivery with its versions is inserted only if every one of them is deliverable
    at `now` by content.deliverability's rule (its SQL form, `deliverable_q`). The locked
    states come back, and the refusals are derived from them by the same rule's Python form
    (`recheck`), for their messages. Returns the refusals ([] = logged). Needs at least
    one version (with none, nothing is locked and nothing could be judged: `serve_one`
    takes the general path).

    As with `commit_deliveries`: a withdrawal that committed before the lock stops the
    content (FOR SHARE reads the row as the withdrawal left it); one that commits after it
    waits for this statement's commit."""
    delivery = delivery_row(result, recipient_id, caller=caller, now=now)
    version_ids = used_version_ids(result)
    locked_ids = sorted(set(version_ids))
    rule, rule_params = _deliverable_sql(now)
    values = [db_value(f, delivery) for f in _DELIVERY_FIELDS]
    with bound_cursor() as cursor:
        cursor.execute(_log_one_sql(rule), [*rule_params, locked_ids, *values, len(locked_ids),
                             delivery.channel, delivery.jurisdiction, version_ids])
        rows = cursor.fetchall()
    logged = rows[0][-1] is not None if rows else False
    errors = recheck(result, {pk: tuple(rest[:-1]) for pk, *rest in rows}, now)
    if logged == bool(errors):
        raise RuleFormsDisagree(f"versions {locked_ids}: logged={logged}, refusals={errors}")
    return errors


def first_uses_recorded(version_ids: set[int], epoch: int) -> bool:
    """Whether this process saw every one of these US first uses committed (under `epoch`)."""
    return all(RECORDED_FIRST_USES.get((pk, epoch)) is not None for pk in version_ids)


def log_deliveries(deliveries: list[Delivery]) -> None:
    """Insert the deliveries and their versions (the where-used index). One delivery on
    PostgreSQL is one round trip: the DeliveredVersion rows are inserted in a
    data-modifying WITH from the delivery's RETURNING id."""
    if len(deliveries) == 1 and connection.vendor == "postgresql":
        delivery = deliveries[0]
        version_ids = [m["version_id"] for m in delivery.manifest.get("modules", [])]
        if version_ids:
            query = InsertQuery(Delivery)
            query.insert_values([f for f in Delivery._meta.local_concrete_fields
                                 if not f.primary_key], [delivery])
            [(insert_sql, params)] = query.get_compiler(connection=connection).as_sql()
            table = DeliveredVersion._meta.db_table
            values = ", ".join(["(%s::bigint)"] * len(version_ids))
            with connection.cursor() as cursor:
                cursor.execute(
                    f"WITH d AS ({insert_sql} RETURNING id) "
                    f"INSERT INTO {table} (delivery_id, version_id, channel, jurisdiction) "
                    f"SELECT d.id, v.id, %s, %s FROM d CROSS JOIN (VALUES {values}) AS v(id)",
                    [*params, delivery.channel, delivery.jurisdiction, *version_ids])
            return
    created = insert_rows(Delivery, deliveries, with_ids=True)
    insert_rows(DeliveredVersion, [
        DeliveredVersion(delivery=d, version_id=m["version_id"], channel=d.channel,
                         jurisdiction=d.jurisdiction)
        for d in created for m in d.manifest.get("modules", [])
    ])


# From this many rows on, PostgreSQL gets them by COPY (one stream, values sent as text by
# psycopg's C dumpers) rather than a multi-row INSERT whose parameters are quoted into the
# SQL text in Python (Django's client-side cursor). Measured by bench/copy_threshold.py
# (docs/performance.md, "COPY threshold"): from 2 rows COPY costs less client CPU for
# deliveries, delivered versions and job results alike, in two runs; at 1 row the runs
# disagree (a delivery's COPY adds a sequence query). Fewer rows: bulk_create.
COPY_MIN_ROWS = 2


def insert_rows(model, objs: list, *, with_ids: bool = False) -> list:
    """Insert `objs` (unsaved instances of `model`, a plain model with no history, no
    signals relied on) and return them; `with_ids`: with their primary keys set.

    PostgreSQL, from COPY_MIN_ROWS rows: the ids are taken from the table's sequence in one
    query and the rows streamed with COPY, each field's value prepared by the field itself
    (`cms.db.db_value`), as bulk_create would. Otherwise (and on SQLite) `bulk_create`.
    Either way the stored rows are the same (tests/integration/test_perf_copy_rows.py)."""
    if connection.vendor != "postgresql" or len(objs) < COPY_MIN_ROWS:
        return model.objects.bulk_create(objs)
    meta = model._meta
    quote = connection.ops.quote_name
    fields = [f for f in meta.local_concrete_fields if not f.primary_key]
    if with_ids:
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) "
                           "FROM generate_series(1, %s)",
                           [meta.db_table, meta.pk.column, len(objs)])
            for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
                obj.pk = pk
        fields = [meta.pk, *fields]
    rows = [[db_value(f, obj) for f in fields] for obj in objs]
    columns = ", ".join(quote(f.column) for f in fields)
    # COPY goes through psycopg's own cursor, outside Django's error wrapper: wrap it, so a
    # lost connection is Django's OperationalError like everywhere else (Celery retries it).
    with connection.cursor() as cursor, connection.wrap_database_errors:
        with cursor.cursor.copy(f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
    return objs


def fresh_until(ctx: StepContext) -> datetime:
    """Until when a context's checks, made at `ctx.now`, still hold without a catalog change."""
    boundaries = [t for v in ctx.versions.values() for t in (v.valid_from, v.expires_at)
                  if t is not None and t > ctx.now]
    return min([ctx.now + CONTEXT_TTL, datetime(ctx.year + 1, 1, 1, tzinfo=UTC), *boundaries])


def warm_context(step: Step, *, channel: str, jurisdiction: str, locale: str,
                 epoch: int | None = None, now: datetime | None = None) -> StepContext:
    """The step's prepared context for this channel, market and locale: from CONTEXTS when
    one was prepared under the current catalog epoch and is still fresh, else read now.
    `epoch` is the one the caller read for this request (read here when not given)."""
    now = now or timezone.now()
    key = (step.pk, channel, jurisdiction, locale, None,
           catalog_epoch.current() if epoch is None else epoch)
    entry = CONTEXTS.get(key)
    if entry is not None and entry[0].now <= now < entry[1]:
        return entry[0]
    ctx = load_context(step, channel=channel, jurisdiction=jurisdiction, locale=locale, now=now)
    CONTEXTS.put(key, (ctx, fresh_until(ctx)))
    return ctx


def refused(result: AssemblyResult, errors: list[AssemblyError]) -> AssemblyResult:
    return AssemblyResult(ok=False, manifest={k: v for k, v in result.manifest.items()
                                              if k not in {"output_sha256", "recipient_sha256"}},
                          errors=errors)


_ENROLLMENT_SQL = (f"SELECT id, seen_module_ids FROM {Enrollment._meta.db_table} "
                   "WHERE journey_id = %s AND recipient_hash = %s")


def enrollment_of(journey_id: int, recipient_hash: str) -> Enrollment | None:
    """The recipient's enrollment in the journey (id and seen modules only), in plain SQL
    bound by the server: on the hot path of every single assembly, the ORM's compilation
    of this one-row read cost more than the query. At most one row (unique journey +
    recipient_hash)."""
    with bound_cursor() as cursor:
        cursor.execute(_ENROLLMENT_SQL, [journey_id, recipient_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    seen = json.loads(row[1]) if isinstance(row[1], str | bytes) else row[1]
    return Enrollment(pk=row[0], journey_id=journey_id, recipient_hash=recipient_hash,
                      seen_module_ids=seen or [])


def serve_one(step: Step, recipient: Mapping, *, channel: str, jurisdiction: str, locale: str,
              caller: Caller, epoch: int | None = None) -> AssemblyResult:
    """Assemble for one recipient and log it; a refusal lists every reason.

    The step's context comes from `warm_context` (`epoch`: the catalog epoch the caller
    already read for this request, if any); `assembled_at` in the manifest is now.

    When the recipient is enrolled in the journey, selector slots skip the modules they
    were already served, and what this delivery contained is remembered for next time.
    Writes history-tracked Enrollment rows: token callers wrap this in `history_as_system`.
    """
    recipient_id = str(recipient.get("id", ""))
    enrollment = enrollment_of(step.journey_id, pseudonymous_id(recipient_id))
    epoch = catalog_epoch.current() if epoch is None else epoch
    now = timezone.now()
    result = warm_context(step, channel=channel, jurisdiction=jurisdiction, locale=locale,
                          epoch=epoch, now=now
                          ).assemble(recipient, seen=enrollment.seen_module_ids if enrollment else ())
    result.manifest["assembled_at"] = iso(now)
    if not result.ok:
        return result
    if (enrollment is None and connection.vendor == "postgresql" and used_version_ids(result)
            and first_uses_recorded(first_use_candidates(result.manifest), epoch)):
        # The usual warm case: nothing to write but the delivery log, in one statement.
        errors = log_one_if_deliverable(result, recipient_id, caller=caller,
                                        now=timezone.now())
        return refused(result, errors) if errors else result
    with transaction.atomic():
        errors = commit_deliveries([(result, recipient_id)], caller=caller, epoch=epoch)[0]
        if not errors and enrollment is not None:
            mark_seen(enrollment, ModuleVersion.objects.filter(
                pk__in=used_version_ids(result)).values_list("module_id", flat=True))
    return refused(result, errors) if errors else result


def serve_many(step: Step, recipients: Sequence[Mapping], *, channel: str, jurisdiction: str,
               locale: str, caller: Caller, layout: str | None = None,
               chunk_size: int | None = None) -> Iterator[AssemblyResult]:
    """Assemble and log for many recipients, in order: one result per recipient, each
    yielded after its chunk's transaction (re-check under lock + delivery log; `chunk_size`,
    default `SERVE_CHUNK`) committed; a result the re-check refuses comes back refused.

    Version states are re-read per chunk; a ranked selector reads its recipients'
    engagement profiles once per chunk. Selectors do not skip modules already served and
    nothing is marked seen: a batch addresses a list, not the journey's enrolled people."""
    chunk_size = chunk_size or SERVE_CHUNK
    results = assemble_many(step, recipients, channel=channel, jurisdiction=jurisdiction,
                            locale=locale, layout=layout, chunk_size=chunk_size)
    pairs = zip(recipients, results, strict=True)
    while chunk := list(islice(pairs, chunk_size)):
        with transaction.atomic():
            late = commit_deliveries([(result, str(recipient.get("id", "")))
                                      for recipient, result in chunk], caller=caller)
        for (_, result), errors in zip(chunk, late, strict=True):
            yield refused(result, errors) if result.ok and errors else result
