"""A canary recipient with unique marker values goes through single and batch assembly;
afterwards no trace of any value may remain in the database (every table), the logs, or
the broker and task results (Redis, when the services profile uses it)."""

from __future__ import annotations

import logging
import os
import time
import uuid

import pytest
from django.db import connection

from delivery import batch
from delivery.models import AssemblyJob
from tests.api.builders import assemble_body, build_world, token, token_client

MARK = f"canary{uuid.uuid4().hex[:10]}"
CANARY = {
    "id": f"{MARK}-id", "title": f"{MARK}-title", "first_name": f"{MARK}-first",
    "last_name": f"{MARK}-last", "specialty": f"{MARK}-spec", "practice_name": f"{MARK}-practice",
    "city": f"{MARK}-city", "consent": {"email": True},
    "unsubscribe_url": f"https://prefs.example.test/u/{MARK}-unsubscribe",
}


def database_text_containing(marker: str) -> list[str]:
    """Every table, every row, as text; the tables where the marker occurs."""
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                if marker in " ".join(str(v) for v in row):
                    found.append(table)
                    break
    return found


def redis_keys_containing(marker: str) -> list[str]:
    url = os.environ.get("CELERY_BROKER_URL", "")
    if not url.startswith("redis"):
        return []
    import redis

    client = redis.Redis.from_url(url)
    found = []
    for key in client.scan_iter(count=500):
        kind = client.type(key).decode()
        if kind == "string":
            values = [client.get(key)]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "hash":
            values = [*client.hkeys(key), *client.hvals(key)]
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = client.zrange(key, 0, -1)
        else:
            values = []
        if marker.encode() in key or any(marker.encode() in (v or b"") for v in values):
            found.append(key.decode(errors="replace"))
    return found


def run_canary(client, *, wait_for_job):
    single = client.post("/api/v1/journeys/hcp-new/steps/welcome/assemble/",
                         assemble_body(recipient=CANARY), format="json")
    assert single.status_code == 200, single.content
    assert f"{MARK}-last" in single.json()["html"]  # the canary really was used
    body = {"journey": "hcp-new", "step": "welcome", "channel": "email", "jurisdiction": "US",
            "locale": "en", "recipients": [CANARY, dict(CANARY, consent={"email": False})]}
    created = client.post("/api/v1/assemblies/", body, format="json")
    assert created.status_code == 202, created.content
    job_id = created.json()["id"]
    wait_for_job(job_id)
    results = client.get(f"/api/v1/assemblies/{job_id}/results/").json()
    assert [r["ok"] for r in results["results"]] == [True, False]
    assert results["next"] is None  # the last page: the results count as fetched
    # Until purged, the fetched results hold the personalised content: the dump sees it.
    assert "delivery_assemblyjobresult" in database_text_containing(MARK)
    batch.purge_due()
    return job_id


def assert_no_trace(caplog, capfd):
    assert database_text_containing(MARK) == []
    assert MARK not in caplog.text
    out, err = capfd.readouterr()
    assert MARK not in out and MARK not in err
    assert redis_keys_containing(MARK) == []


@pytest.mark.django_db
def test_canary_leaves_no_trace_eager(caplog, capfd, django_capture_on_commit_callbacks):
    caplog.set_level(logging.DEBUG)
    build_world()
    _, key = token()
    client = token_client(key)

    def committed_post(*args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return original_post(*args, **kwargs)

    original_post, client.post = client.post, committed_post
    run_canary(client, wait_for_job=lambda job_id: None)
    assert_no_trace(caplog, capfd)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_canary_leaves_no_trace_through_a_real_worker(celery_worker, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    build_world()
    _, key = token()

    def wait_for_job(job_id, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if AssemblyJob.objects.get(pk=job_id).status == "done":
                return
            time.sleep(0.3)
        raise AssertionError(f"job not done; worker log:\n{celery_worker.log_text()[-3000:]}")

    run_canary(token_client(key), wait_for_job=wait_for_job)
    assert_no_trace(caplog, capfd)
    assert MARK not in celery_worker.log_text()
