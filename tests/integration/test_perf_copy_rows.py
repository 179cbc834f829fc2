"""The batch write path's COPY (delivery.serving.insert_rows) stores exactly the rows the
multi-row INSERT (bulk_create) stored: deliveries with their manifests and hashes, their
delivered versions, and job results with their HTML, text and manifests."""

import pytest
from django.db import transaction

from delivery import serving
from delivery.models import AssemblyJob, AssemblyJobResult, DeliveredVersion, Delivery
from tests.api.builders import RECIPIENT, build_world

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
N = 30  # above COPY_MIN_ROWS

VOLATILE = {"id", "served_at", "created_at", "job", "delivery", "job_id", "delivery_id"}


def _recipients():
    return [dict(RECIPIENT, id=f"copy-{n}", first_name=f"Name{n}") for n in range(N)]


def _serve(world, *, copy: bool, monkeypatch):
    monkeypatch.setattr(serving, "COPY_MIN_ROWS", 20 if copy else 10**9)
    before = Delivery.objects.count()
    results = list(serving.serve_many(world["step"], _recipients(), channel="email",
                                      jurisdiction="US", locale="en",
                                      caller=serving.Caller(None, None), chunk_size=N))
    assert all(r.ok for r in results), [r.errors for r in results if not r.ok]
    assert Delivery.objects.count() == before + N
    return results


def _delivery_rows(ids):
    rows = []
    for d in Delivery.objects.filter(pk__in=ids).order_by("recipient_pseudonym"):
        values = {f.attname: getattr(d, f.attname) for f in Delivery._meta.concrete_fields
                  if f.attname not in VOLATILE}
        values["manifest"] = {k: v for k, v in d.manifest.items() if k != "assembled_at"}
        values["versions"] = sorted(DeliveredVersion.objects.filter(delivery=d)
                                    .values_list("version_id", "channel", "jurisdiction"))
        rows.append(values)
    return rows


def test_copy_writes_the_same_deliveries_as_bulk_create(monkeypatch):
    world = build_world()
    first = set(Delivery.objects.values_list("pk", flat=True))
    _serve(world, copy=False, monkeypatch=monkeypatch)
    by_insert = set(Delivery.objects.values_list("pk", flat=True)) - first
    _serve(world, copy=True, monkeypatch=monkeypatch)
    by_copy = set(Delivery.objects.values_list("pk", flat=True)) - first - by_insert
    assert len(by_copy) == N
    inserted, copied = _delivery_rows(by_insert), _delivery_rows(by_copy)
    assert copied == inserted
    assert all(len(row["versions"]) >= 3 for row in copied)
    assert all(len(row["output_sha256"]) == 64 for row in copied)


def test_copy_writes_the_same_job_results_as_bulk_create(monkeypatch):
    world = build_world()
    results = _serve(world, copy=False, monkeypatch=monkeypatch)
    stored = {}
    for copy in (False, True):
        job = AssemblyJob.objects.create(journey_slug="hcp-new", step_key="welcome",
                                         channel="email", jurisdiction="US", locale="en",
                                         total=N, chunk_size=N)
        monkeypatch.setattr(serving, "COPY_MIN_ROWS", 20 if copy else 10**9)
        with transaction.atomic():
            serving.insert_rows(AssemblyJobResult, [
                AssemblyJobResult(job=job, index=i, ok=True, subject=r.subject, html=r.html,
                                  text=r.text, manifest=r.manifest)
                for i, r in enumerate(results)])
        stored[copy] = [
            {f.attname: getattr(row, f.attname) for f in AssemblyJobResult._meta.concrete_fields
             if f.attname not in VOLATILE}
            for row in AssemblyJobResult.objects.filter(job=job).order_by("index")]
        assert all(row.created_at for row in AssemblyJobResult.objects.filter(job=job))
    assert len(stored[True]) == N
    assert stored[True] == stored[False]
    assert stored[True][0]["html"] == results[0].html
