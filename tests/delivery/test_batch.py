import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from delivery import batch
from delivery.models import AssemblyJob, AssemblyJobResult, Delivery, JobStatus
from tests.api.builders import RECIPIENT, build_world, codes, token, token_client

pytestmark = pytest.mark.django_db
URL = "/api/v1/assemblies/"


@pytest.fixture
def world(db):
    return build_world()


class CommittingClient:
    """A token client whose POSTs run their on-commit callbacks (the chunk tasks), as
    they would after a real commit; tests run inside a transaction that never commits."""

    def __init__(self, client, capture):
        self._client, self._capture = client, capture

    def post(self, *args, **kwargs):
        with self._capture(execute=True):
            return self._client.post(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


@pytest.fixture
def client(world, django_capture_on_commit_callbacks):
    _, key = token()
    return CommittingClient(token_client(key), django_capture_on_commit_callbacks)


def recipients(n, **overrides):
    return [dict(RECIPIENT, id=f"crm-{i}", last_name=f"Name{i}", **overrides) for i in range(n)]


def job_request(n=3, **overrides):
    body = {"journey": "hcp-new", "step": "welcome", "channel": "email", "jurisdiction": "US",
            "locale": "en", "recipients": recipients(n)}
    body.update(overrides)
    return body


def all_results(client, job_id):
    out, url = [], f"{URL}{job_id}/results/"
    while url:
        page = client.get(url).json()
        out += page["results"]
        url = page["next"]
    return out


def test_batch_is_accepted_run_in_chunks_and_reports_results(client, settings):
    settings.TESSERA_BATCH_CHUNK_SIZE = 2
    body = job_request(5)
    body["recipients"][3]["consent"] = {"email": False}
    response = client.post(URL, body, format="json")
    assert response.status_code == 202, response.content
    job = response.json()
    assert response["Location"] == f"{URL}{job['id']}/"
    status = client.get(f"{URL}{job['id']}/").json()
    assert (status["status"], status["total"], status["done"], status["failed"]) == ("done", 5, 5, 1)
    results = all_results(client, job["id"])
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    # Each chunk assembled its own recipients (chunks 2-3 and 4 read from an offset).
    for result in results:
        assert result["index"] == 3 or f"Dr. Name{result['index']}" in result["html"], result
    assert results[3] == {"index": 3, "ok": False, "errors": [
        {"code": "no_consent", "detail": "The recipient has not consented to the email channel."}]}
    assert Delivery.objects.filter(job_id=job["id"]).count() == 4
    # The recipients were dropped as soon as the job finished.
    assert AssemblyJob.objects.get(pk=job["id"]).recipients == []


def test_rerun_of_a_chunk_assembles_nobody_twice(client, settings):
    settings.TESSERA_BATCH_CHUNK_SIZE = 10
    settings.CELERY_TASK_ALWAYS_EAGER = True
    job_id = client.post(URL, job_request(4), format="json").json()["id"]
    job = AssemblyJob.objects.get(pk=job_id)
    # Simulate a worker killed after committing half a chunk: drop two results and rerun.
    AssemblyJobResult.objects.filter(job=job, index__in=[1, 3]).delete()
    job.status, job.recipients = JobStatus.RUNNING, recipients(4)
    job.save(update_fields=["status", "recipients"])
    assert batch.run_chunk(job_id, 0, 4) == 2
    assert batch.run_chunk(job_id, 0, 4) == 0
    assert sorted(AssemblyJobResult.objects.filter(job=job).values_list("index", flat=True)) == [0, 1, 2, 3]
    assert Delivery.objects.filter(job=job).count() == 6  # 4 first run + 2 re-run, none doubled
    assert AssemblyJob.objects.get(pk=job_id).status == JobStatus.DONE


def test_a_chunk_reads_only_its_own_recipients_and_an_emptied_job_reads_none(client, settings):
    settings.TESSERA_BATCH_CHUNK_SIZE = 10
    job_id = client.post(URL, job_request(7), format="json").json()["id"]
    AssemblyJob.objects.filter(pk=job_id).update(recipients=recipients(7))
    assert [r["id"] for r in batch._recipients_slice(job_id, 2, 5)] == ["crm-2", "crm-3", "crm-4"]
    assert [r["id"] for r in batch._recipients_slice(job_id, 5, 10)] == ["crm-5", "crm-6"]
    assert batch._recipients_slice(job_id, 8, 10) == []
    AssemblyJob.objects.filter(pk=job_id).update(recipients=[])
    assert batch._recipients_slice(job_id, 0, 10) == []


def test_idempotency_key_returns_the_same_job(client):
    headers = {"HTTP_IDEMPOTENCY_KEY": "order-42"}
    first = client.post(URL, job_request(2), format="json", **headers)
    again = client.post(URL, job_request(2), format="json", **headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert AssemblyJob.objects.count() == 1
    other = client.post(URL, job_request(3), format="json", **headers)
    assert other.status_code == 422 and codes(other) == ["idempotency_key_reused"]


def test_too_many_recipients_is_422_and_creates_nothing(client):
    body = job_request(0)
    body["recipients"] = [{"id": str(i)} for i in range(10_001)]
    response = client.post(URL, body, format="json")
    assert response.status_code == 422 and codes(response) == ["too_many_recipients"]
    assert AssemblyJob.objects.count() == 0


def test_bad_recipient_in_json_is_400_naming_the_index(client):
    body = job_request(2)
    body["recipients"][1] = {"last_name": 5}
    response = client.post(URL, body, format="json")
    assert response.status_code == 400
    assert {"field": "recipients[1].id", "code": "required"} in [
        {"field": e.get("field"), "code": e["code"]} for e in response.json()["errors"]]
    assert AssemblyJob.objects.count() == 0


def test_unknown_journey_or_step_is_422(client):
    assert codes(client.post(URL, job_request(journey="nope"), format="json")) == ["unknown_journey"]
    assert codes(client.post(URL, job_request(step="nope"), format="json")) == ["unknown_step"]


def test_out_of_scope_batch_is_403(client):
    response = client.post(URL, job_request(jurisdiction="DE"), format="json")
    assert response.status_code == 403 and codes(response) == ["jurisdiction_out_of_scope"]


def csv_upload(text):
    return SimpleUploadedFile("recipients.csv", text.encode(), content_type="text/csv")


def test_csv_with_an_invalid_row_reports_its_row_number_and_assembles_the_rest(client):
    csv_text = (
        "id,title,last_name,consent_email,unsubscribe_url\n"
        "crm-1,Dr.,One,true,https://prefs.example.test/u/1\n"
        "crm-2,Dr.,Two,maybe,https://prefs.example.test/u/2\n"
        "crm-3,Dr.,Three\n"
        "crm-4,Dr.,Four,yes,https://prefs.example.test/u/4\n"
    )
    response = client.post(URL, {"journey": "hcp-new", "step": "welcome", "channel": "email",
                                 "jurisdiction": "US", "locale": "en",
                                 "recipients": csv_upload(csv_text)}, format="multipart")
    assert response.status_code == 202, response.content
    results = all_results(client, response.json()["id"])
    assert [r["ok"] for r in results] == [True, False, False, True]
    assert results[1]["errors"][0]["row"] == 3 and results[1]["errors"][0]["code"] == "invalid_row"
    assert results[2]["errors"][0]["row"] == 4
    assert "maybe" not in results[1]["errors"][0]["detail"]  # values are never echoed


def test_csv_without_id_column_is_400(client):
    response = client.post(URL, {"journey": "hcp-new", "step": "welcome", "channel": "email",
                                 "jurisdiction": "US", "locale": "en",
                                 "recipients": csv_upload("name\nx\n")}, format="multipart")
    assert response.status_code == 400 and codes(response) == ["invalid_csv"]


def test_other_callers_cannot_see_a_job(client):
    job_id = client.post(URL, job_request(1), format="json").json()["id"]
    _, other = token(name="Other")
    assert token_client(other).get(f"{URL}{job_id}/").status_code == 404
    assert token_client(other).get(f"{URL}{job_id}/results/").status_code == 404


def test_results_are_purged_after_fetch_or_retention(client, settings):
    fetched = client.post(URL, job_request(2), format="json").json()["id"]
    kept = client.post(URL, job_request(2), format="json").json()["id"]
    all_results(client, fetched)
    assert batch.purge_due() == 1
    assert AssemblyJobResult.objects.filter(job_id=fetched).count() == 0
    status = client.get(f"{URL}{fetched}/").json()
    assert status["status"] == "purged"
    assert AssemblyJobResult.objects.filter(job_id=kept).count() == 2
    later = timezone.now() + timezone.timedelta(hours=settings.TESSERA_BATCH_RETENTION_HOURS + 1)
    assert batch.purge_due(now=later) == 1
    assert AssemblyJobResult.objects.count() == 0
    # The delivery log stays.
    assert Delivery.objects.count() == 4


def test_delete_purges_at_once(client):
    job_id = client.post(URL, job_request(1), format="json").json()["id"]
    assert client.delete(f"{URL}{job_id}/").status_code == 204
    assert AssemblyJobResult.objects.filter(job_id=job_id).count() == 0


def test_withdrawal_between_read_and_commit_refuses_the_chunk(client, world, monkeypatch):
    """A version withdrawn after the chunk read it but before its results commit is not
    delivered: the locked re-check refuses it (after re-assembling up to 3 times)."""
    from content.models import ModuleVersion
    from delivery import serving

    claim_id = world["versions"]["claim"].pk
    original = serving.lock_versions

    def withdraw_then_lock(ids):
        version = ModuleVersion.objects.get(pk=claim_id)
        if version.state != "withdrawn":
            version.state = "withdrawn"
            version.save(update_fields=["state"])
        return original(ids)

    monkeypatch.setattr(serving, "lock_versions", withdraw_then_lock)
    job_id = client.post(URL, job_request(2), format="json").json()["id"]
    results = all_results(client, job_id)
    assert all(not r["ok"] for r in results)
    assert "withdrawn" in [e["code"] for e in results[0]["errors"]]
    assert Delivery.objects.count() == 0


def test_stalled_chunks_are_requeued_and_each_recipient_assembled_once(client, settings):
    """Chunk messages lost with the broker (a Redis restart): the stalled job's unfinished
    chunks are re-enqueued, a finished job is left alone, and nobody is assembled twice."""
    settings.TESSERA_BATCH_CHUNK_SIZE = 2
    settings.TESSERA_BATCH_STALL_SECONDS = 60
    settings.CELERY_TASK_ALWAYS_EAGER = True
    finished_id = client.post(URL, job_request(3), format="json").json()["id"]
    assert AssemblyJob.objects.get(pk=finished_id).status == JobStatus.DONE
    # Posted without running the on-commit callbacks: every chunk message is "lost"...
    stalled_id = client._client.post(URL, job_request(5), format="json").json()["id"]
    # ...except the first chunk, which a worker ran before the broker went away.
    assert batch.run_chunk(stalled_id, 0, 2) == 2
    assert AssemblyJob.objects.get(pk=stalled_id).status == JobStatus.RUNNING

    assert batch.requeue_stalled_chunks() == []  # progress is recent: not stalled yet
    later = timezone.now() + timezone.timedelta(seconds=61)
    sent = batch.requeue_stalled_chunks(now=later)

    assert sent == [(stalled_id, 2, 4), (stalled_id, 4, 5)]  # the finished chunk is not re-sent
    stalled = AssemblyJob.objects.get(pk=stalled_id)
    assert stalled.status == JobStatus.DONE and stalled.recipients == []
    indexes = AssemblyJobResult.objects.filter(job=stalled).values_list("index", flat=True)
    assert sorted(indexes) == [0, 1, 2, 3, 4]
    pseudonyms = list(Delivery.objects.filter(job=stalled)
                      .values_list("recipient_pseudonym", flat=True))
    assert len(pseudonyms) == 5 and len(set(pseudonyms)) == 5
    # A duplicate of a chunk that was not lost changes nothing.
    assert batch.run_chunk(stalled_id, 2, 4) == 0
    assert Delivery.objects.filter(job=stalled).count() == 5
    assert batch.requeue_stalled_chunks(now=later + timezone.timedelta(hours=1)) == []
    assert Delivery.objects.filter(job_id=finished_id).count() == 3
