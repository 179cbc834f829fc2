"""Batch assembly: a job of up to 10,000 recipients run in Celery chunks, exactly once each.

- `create_job` stores the job and its recipients and queues one task per chunk after the
  transaction commits. A reused Idempotency-Key returns the job it created before.
- `run_chunk` (the task body) skips recipients that already have a result, assembles the
  rest from one prepared step context, and in one transaction takes a *shared* lock on the
  job row (so a purge, which locks it exclusively, cannot run alongside) and an exclusive
  lock on just this chunk (so a duplicate run of the same chunk waits, then skips what the
  first wrote), re-checks the module versions used (see `serving.commit_deliveries`) and
  writes the results and the delivery log. Chunks of one job commit in parallel; a chunk
  re-run after a worker died (or re-enqueued) assembles nobody twice.
- `requeue_stalled_chunks` (a beat task every minute) re-enqueues the unfinished chunks of
  jobs that made no progress for TESSERA_BATCH_STALL_SECONDS: chunk messages live only in
  the broker, and a Redis restart without persistence loses them.
- The job's recipients are emptied when it finishes; results are purged when fetched (after
  the last page was read) or when TESSERA_BATCH_RETENTION_HOURS have passed: by beat's
  `purge_due` in the services profile; in the embedded profile (no beat) right after the
  last page is read, and expired jobs on the next `create_job`.
- Recipient files are read by `journeys.recipients` (the one parser: CSV, JSON, NDJSON).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Func, JSONField, Max, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from journeys.assembly import AssemblyError, AssemblyResult, load_context
from journeys.models import Step
from journeys.recipients import RecipientsError, RowError, max_recipients, parse_recipients

from .models import AssemblyJob, AssemblyJobResult, JobStatus
from .serving import Caller, commit_deliveries, insert_rows

logger = logging.getLogger(__name__)

RECHECK_ATTEMPTS = 3


class BatchError(Exception):
    """A refusal of the whole request (no job created): code, detail and HTTP status."""

    def __init__(self, code: str, detail: str, status: int = 422, **extra):
        super().__init__(detail)
        self.code, self.detail, self.status, self.extra = code, detail, status, extra


def check_count(n: int) -> None:
    if n > max_recipients():
        raise BatchError("too_many_recipients",
                         f"{n} recipients; a batch takes at most {max_recipients()}. "
                         "Split it into several jobs.")


def upload_format(name: str, content_type: str = "") -> str:
    """The recipients format of an uploaded file, from its extension or media type (CSV
    when neither says otherwise)."""
    name, content_type = (name or "").lower(), (content_type or "").lower()
    if name.endswith((".ndjson", ".jsonl")) or "ndjson" in content_type or "jsonl" in content_type:
        return "ndjson"
    if name.endswith(".json") or content_type.startswith("application/json"):
        return "json"
    return "csv"


def parse_recipient_file(raw: bytes, *, format: str = "csv"
                         ) -> tuple[list[dict], dict[str, list[dict]]]:
    """Recipients from an uploaded file (`journeys.recipients` reads every format), in
    the order of the file, and per-index errors for its bad rows.

    A bad row keeps its place (as an empty recipient, refused with its `invalid_row` error
    and row number in the results); the rest are assembled. A refusal of the whole file
    is a BatchError (400, or 422 for too many recipients)."""
    try:
        parsed = parse_recipients(raw, format=format)
    except RecipientsError as exc:
        raise BatchError(exc.code, exc.message,
                         status=422 if exc.code == "too_many_recipients" else 400) from None
    recipients: list[dict] = []
    errors: dict[str, list[dict]] = {}
    for _, item in parsed.in_order():
        if isinstance(item, RowError):
            errors[str(len(recipients))] = [item.as_dict()]
            recipients.append({})
        else:
            recipients.append(item)
    return recipients, errors


def request_fingerprint(payload: dict) -> str:
    blob = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class JobRequest:
    step: Step
    channel: str
    jurisdiction: str
    locale: str
    recipients: list
    input_errors: dict


def create_job(request: JobRequest, *, user, owner_key: str, idempotency_key: str | None
               ) -> tuple[AssemblyJob, bool]:
    """Store the job and queue its chunks on commit. Returns (job, created)."""
    from .tasks import assemble_chunk

    check_count(len(request.recipients))
    if purges_on_fetch():
        # No beat in the embedded profile: jobs past their retention (never fetched, so
        # never purged on fetch) are purged on the next job instead.
        purge_due()
    fingerprint = request_fingerprint({
        "journey": request.step.journey.slug, "step": request.step.key,
        "channel": request.channel, "jurisdiction": request.jurisdiction,
        "locale": request.locale, "recipients": request.recipients,
    })
    if idempotency_key:
        existing = _existing(owner_key, idempotency_key, fingerprint)
        if existing is not None:
            return existing, False
    caller = Caller.of(user)
    chunk_size = settings.TESSERA_BATCH_CHUNK_SIZE
    try:
        with transaction.atomic():
            job = AssemblyJob.objects.create(
                token_id=caller.token_id, user_id=caller.user_id, owner_key=owner_key,
                idempotency_key=idempotency_key or None, request_sha256=fingerprint,
                journey_slug=request.step.journey.slug, step_key=request.step.key,
                channel=request.channel, jurisdiction=request.jurisdiction,
                locale=request.locale, total=len(request.recipients), chunk_size=chunk_size,
                recipients=request.recipients, input_errors=request.input_errors,
            )
            for start in range(0, job.total, chunk_size):
                end = min(start + chunk_size, job.total)
                transaction.on_commit(
                    lambda s=start, e=end: assemble_chunk.delay(str(job.pk), s, e))
    except IntegrityError:
        # A concurrent retry with the same key won the race: return its job.
        existing = _existing(owner_key, idempotency_key, fingerprint)
        if existing is None:
            raise
        return existing, False
    return job, True


def _existing(owner_key: str, key: str | None, fingerprint: str) -> AssemblyJob | None:
    job = AssemblyJob.objects.filter(owner_key=owner_key, idempotency_key=key).first()
    if job is not None and job.request_sha256 != fingerprint:
        raise BatchError("idempotency_key_reused",
                         "This Idempotency-Key was used for a different request; use a new key.",
                         status=422)
    return job


def _input_refusal(errors: list[dict]) -> AssemblyResult:
    return AssemblyResult(ok=False, errors=[
        AssemblyError(e["code"], e["detail"]) for e in errors])


def run_chunk(job_id: str, start: int, end: int) -> int:
    """Assemble recipients [start, end) of a job that have no result yet. Idempotent."""
    job = AssemblyJob.objects.defer("recipients").filter(pk=job_id).first()
    if job is None or job.status == JobStatus.PURGED:
        return 0
    todo = _pending(job, start, end)
    if not todo:
        _finish_if_complete(job.pk)
        return 0
    AssemblyJob.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(status=JobStatus.RUNNING)
    step = Step.objects.filter(journey__slug=job.journey_slug, key=job.step_key).first()
    recipients = _recipients_slice(job.pk, start, end)
    written = 0
    for attempt in range(RECHECK_ATTEMPTS):
        results = _assemble(job, step, todo, recipients, start)
        with transaction.atomic():
            locked = _lock_chunk(job.pk, start)
            if locked.status == JobStatus.PURGED:
                return 0
            todo_now = set(_pending(locked, start, end))
            items = [(i, r, rid) for i, r, rid in results if i in todo_now]
            refusals = commit_deliveries([(r, rid) for _, r, rid in items],
                                         caller=Caller(job.token_id, job.user_id), job_id=job.pk)
            late = any(r.ok and errs for (_, r, _), errs in zip(items, refusals, strict=True))
            if late and attempt + 1 < RECHECK_ATTEMPTS:
                # A version changed state after we read it: roll back and assemble again
                # (a selector may pick another module; a fixed slot is refused).
                transaction.set_rollback(True)
                continue
            insert_rows(AssemblyJobResult, [
                _result_row(job.pk, i, r, errs, job.input_errors.get(str(i)))
                for (i, r, _), errs in zip(items, refusals, strict=True)
            ])
            written = len(items)
        break
    _finish_if_complete(job.pk)
    return written


def _lock_chunk(job_id, start: int) -> AssemblyJob:
    """Inside a write transaction: the job, read under a lock that excludes a purge but not
    the job's other chunks, plus a lock on this chunk alone (held to the commit).

    PostgreSQL: FOR SHARE on the job row (purge's FOR UPDATE waits for it, other chunks'
    FOR SHARE do not) and a transaction advisory lock on (job, chunk start). SQLite: write
    transactions begin IMMEDIATE (settings.DATABASES), which already serialises writers."""
    if connection.vendor != "postgresql":
        return AssemblyJob.objects.get(pk=job_id)
    table = AssemblyJob._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s), %s)", [str(job_id), start])
    return AssemblyJob.objects.raw(f"SELECT id, status, total FROM {table} WHERE id = %s FOR SHARE",
                                   [job_id])[0]


def _recipients_slice(job_id, start: int, end: int) -> list:
    """Recipients [start, end) of a job. On PostgreSQL only that slice leaves the server: a
    job holds up to 10,000 recipients (~2 MB of JSON) and each chunk needs 200, and reading
    the whole list for every chunk cost a quarter of a worker's time (bench/scale.py)."""
    if connection.vendor == "postgresql":
        part = (AssemblyJob.objects.filter(pk=job_id)
                .annotate(part=Func(F("recipients"), Value(f"$[{start} to {end - 1}]"),
                                    function="jsonb_path_query_array",
                                    template="%(function)s(%(expressions)s::jsonpath)",
                                    output_field=JSONField()))
                .values_list("part", flat=True).first())
        return part or []
    everyone = AssemblyJob.objects.filter(pk=job_id).values_list("recipients", flat=True).first()
    return (everyone or [])[start:end]


def _pending(job: AssemblyJob, start: int, end: int) -> list[int]:
    done = set(AssemblyJobResult.objects.filter(job=job, index__gte=start, index__lt=end)
               .values_list("index", flat=True))
    return [i for i in range(start, min(end, job.total)) if i not in done]


def _assemble(job: AssemblyJob, step: Step | None, indexes: list[int], recipients: list,
              first: int):
    """Assemble the recipients at `indexes` of the job; `recipients` holds the job's
    recipients from index `first` on."""
    ctx = None
    out = []
    for i in indexes:
        input_errors = job.input_errors.get(str(i))
        recipient = recipients[i - first] if 0 <= i - first < len(recipients) else {}
        rid = str(recipient.get("id", "")) if isinstance(recipient, dict) else ""
        if input_errors:
            out.append((i, _input_refusal(input_errors), rid))
            continue
        if step is None:
            out.append((i, AssemblyResult(ok=False, errors=[AssemblyError(
                "unknown_step", f"Step {job.step_key!r} of {job.journey_slug!r} no longer exists.")]),
                rid))
            continue
        if ctx is None:
            ctx = load_context(step, channel=job.channel, jurisdiction=job.jurisdiction,
                               locale=job.locale)
        out.append((i, ctx.assemble(recipient), rid))
    return out


def _result_row(job_id, index: int, result: AssemblyResult, refusal: list[AssemblyError],
                input_errors: list[dict] | None = None) -> AssemblyJobResult:
    if input_errors:  # a bad CSV row: keep its row number
        return AssemblyJobResult(job_id=job_id, index=index, ok=False, errors=input_errors)
    if result.ok and not refusal:
        return AssemblyJobResult(job_id=job_id, index=index, ok=True, subject=result.subject,
                                 html=result.html, text=result.text, manifest=result.manifest)
    errors = refusal or result.errors
    return AssemblyJobResult(job_id=job_id, index=index, ok=False,
                             errors=[e.as_dict() for e in errors])


def _finish_if_complete(job_id) -> None:
    # Unlocked look first: only the last chunk takes the exclusive lock (which waits for
    # chunks still writing), so the others do not queue behind each other's commits.
    job = AssemblyJob.objects.only("total", "status").get(pk=job_id)
    if job.status in {JobStatus.DONE, JobStatus.PURGED} or job.results.count() < job.total:
        return
    with transaction.atomic():
        job = AssemblyJob.objects.select_for_update().get(pk=job_id)
        if job.status in {JobStatus.DONE, JobStatus.PURGED}:
            return
        if job.results.count() >= job.total:
            job.status = JobStatus.DONE
            job.finished_at = timezone.now()
            job.recipients = []  # personal data: not kept a moment longer than needed
            job.save(update_fields=["status", "finished_at", "recipients"])


def counts(job: AssemblyJob) -> dict:
    agg = job.results.aggregate(done=Count("id"), failed=Count("id", filter=Q(ok=False)))
    return {"done": agg["done"], "failed": agg["failed"],
            "assembled": agg["done"] - agg["failed"]}


def expires_at(job: AssemblyJob):
    return job.created_at + timezone.timedelta(hours=settings.TESSERA_BATCH_RETENTION_HOURS)


def purges_on_fetch() -> bool:
    """True in the embedded profile: without a broker no beat runs (`make run` starts no
    scheduler; `cms.serve` starts beat only with CELERY_BROKER_URL), so `purge_due` would
    never run and fetched results would keep recipient names for good."""
    return settings.CELERY_BROKER_URL.startswith("memory://")


def mark_fetched(job: AssemblyJob) -> None:
    """Called when the last page of a finished job's results was read. With a beat, the
    next `purge_due` run drops them; without one (embedded), they are purged as soon as
    the reading transaction commits (the page is already in the response)."""
    if job.status != JobStatus.DONE:
        return
    if job.results_fetched_at is None:
        AssemblyJob.objects.filter(pk=job.pk, results_fetched_at__isnull=True).update(
            results_fetched_at=timezone.now())
    if purges_on_fetch():
        transaction.on_commit(lambda: purge(job))


def purge(job: AssemblyJob) -> None:
    """Drop a job's recipients and results (the status, counts and delivery log remain)."""
    with transaction.atomic():
        locked = AssemblyJob.objects.select_for_update().get(pk=job.pk)
        if locked.status == JobStatus.PURGED:
            return
        locked.results.all().delete()
        locked.recipients = []
        locked.status = JobStatus.PURGED
        locked.purged_at = timezone.now()
        locked.save(update_fields=["recipients", "status", "purged_at"])


def purge_due(now=None) -> int:
    """Purge jobs whose results were fetched, or whose retention has passed."""
    now = now or timezone.now()
    cutoff = now - timezone.timedelta(hours=settings.TESSERA_BATCH_RETENTION_HOURS)
    due = AssemblyJob.objects.exclude(status=JobStatus.PURGED).filter(
        Q(results_fetched_at__isnull=False) | Q(created_at__lt=cutoff))
    purged = 0
    for job in due:
        purge(job)
        purged += 1
    return purged


def stall_seconds() -> int:
    return settings.TESSERA_BATCH_STALL_SECONDS


def requeue_stalled_chunks(now=None) -> list[tuple[str, int, int]]:
    """Re-enqueue the unfinished chunks of queued or running jobs that made no progress
    (no new result, no re-enqueue) for TESSERA_BATCH_STALL_SECONDS. Returns what it sent.

    Progress is judged per job, not per chunk: while any chunk of a job commits, its other
    chunks are just waiting their turn in the queue. A duplicate of a chunk that was not
    lost is harmless (`run_chunk` skips recipients with a result). A job whose results are
    all written but whose finishing step was lost is finished here.
    """
    from .tasks import assemble_chunk

    now = now or timezone.now()
    cutoff = now - timezone.timedelta(seconds=stall_seconds())
    stalled = (AssemblyJob.objects
               .filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING], created_at__lt=cutoff)
               .annotate(last_progress=Greatest(
                   Coalesce(Max("results__created_at"), "created_at"),
                   Coalesce("requeued_at", "created_at")))
               .filter(last_progress__lt=cutoff)
               .only("pk", "total", "chunk_size"))
    sent: list[tuple[str, int, int]] = []
    for job in stalled:
        done = set(job.results.values_list("index", flat=True))
        chunks = [(start, min(start + job.chunk_size, job.total))
                  for start in range(0, job.total, job.chunk_size)]
        unfinished = [(s, e) for s, e in chunks if any(i not in done for i in range(s, e))]
        if not unfinished:
            _finish_if_complete(job.pk)
            continue
        # Claim the job for this stall period first, so two beat runs do not both send.
        claimed = AssemblyJob.objects.filter(
            Q(requeued_at__isnull=True) | Q(requeued_at__lt=cutoff), pk=job.pk,
            status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(requeued_at=now)
        if not claimed:
            continue
        logger.warning("batch job %s stalled: re-enqueueing %d unfinished chunk(s)",
                       job.pk, len(unfinished))
        for start, end in unfinished:
            assemble_chunk.delay(str(job.pk), start, end)
            sent.append((str(job.pk), start, end))
    return sent
