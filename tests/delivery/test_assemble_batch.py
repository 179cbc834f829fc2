"""The assemble_batch command: files, index, summary, bad rows, clear failures; and it
serves like the API (delivery log, locked re-check at commit)."""

import json
from email import message_from_bytes
from email.policy import default

import pytest
from django.core.management import CommandError, call_command

from delivery import serving
from delivery.models import DeliveredVersion, Delivery
from journeys.models import pseudonymous_id
from tests.journeys import conftest as journeys_conftest

world = journeys_conftest.world  # the journey fixture: a US email step, four approved modules

pytestmark = pytest.mark.django_db

CSV = (
    "id,title,first_name,last_name,specialty,consent_email,unsubscribe_url\n"
    "r1,Dr.,Ann,Lee,Cardiology,yes,https://prefs.example.test/u/r1\n"
    'r2,Dr.,Bob,"<script>alert(1)</script>{{ 7*7 }}",Nephrology,true,https://prefs.example.test/u/r2\n'
    "r3,Dr.,Cy\n"
    "r4,Dr.,Di,Ng,Cardiology,no,https://prefs.example.test/u/r4\n"
    "r5,Dr.,Ed,,Cardiology,1,https://prefs.example.test/u/r5\n"
)


def run(tmp_path, world, csv_text=CSV, **extra):
    source = tmp_path / "recipients.csv"
    source.write_text(csv_text, encoding="utf-8")
    out = tmp_path / "out"
    stdout, stderr = _Buffer(), _Buffer()
    call_command("assemble_batch", journey=world["journey"].slug, step=world["step"].key,
                 recipients=str(source), out=str(out), no_progress=True, stdout=stdout,
                 stderr=stderr, **extra)
    return out, stdout.text, stderr.text


class _Buffer:
    def __init__(self):
        self.text = ""

    def write(self, value):
        self.text += value

    def flush(self):
        pass


def test_csv_with_an_invalid_row_reports_its_line_and_assembles_the_rest(tmp_path, world):
    out, stdout, stderr = run(tmp_path, world)
    index = json.loads((out / "index.json").read_text())
    by_row = {entry["row"]: entry for entry in index["entries"]}
    assert by_row[2]["ok"] and by_row[3]["ok"]
    assert by_row[4]["errors"][0]["code"] == "invalid_row"  # the one recipients parser's code
    assert by_row[4]["errors"][0]["row"] == 4
    assert "row 4" in stderr and "row 4" in stdout
    assert [e["code"] for e in by_row[5]["errors"]] == ["no_consent"]
    assert [e["code"] for e in by_row[6]["errors"]] == ["missing_recipient_field"] * 2
    assert "no_consent: 1" in stdout and "missing_recipient_field: 1" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["index.json", "row-000002.eml", "row-000003.eml"]
    message = message_from_bytes((out / "row-000003.eml").read_bytes(), policy=default)
    html = message.get_body(("html",)).get_content()
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;{{ 7*7 }}" in html
    assert message["Subject"] == "News for Dr. <script>alert(1)</script>{{ 7*7 }}"  # plain text
    # The message carries the one-click unsubscribe headers of its own recipient (RFC 8058).
    assert message["List-Unsubscribe"] == "<https://prefs.example.test/u/r2>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert index["invalid_rows"] == 1
    # The index names recipients only by pseudonym; never their data.
    flat = (out / "index.json").read_text()
    for value in ("Lee", "Ann", '"r1"', "Bob"):
        assert value not in flat


def test_portal_layout_writes_html_pages(tmp_path, world):
    out, _, _ = run(tmp_path, world, layout="portal")
    assert (out / "row-000002.html").read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("change, message", [
    ({"journey": "no-such-journey"}, "Unknown journey"),
    ({"step": "no-such-step"}, "has no step"),
    ({"recipients": "/nonexistent/recipients.csv"}, "does not exist"),
])
def test_bad_arguments_fail_with_a_message(tmp_path, world, change, message):
    args = {"journey": world["journey"].slug, "step": world["step"].key,
            "recipients": str(tmp_path / "r.csv"), "out": str(tmp_path / "out"), **change}
    (tmp_path / "r.csv").write_text(CSV)
    with pytest.raises(CommandError, match=message):
        call_command("assemble_batch", no_progress=True, **args)


def test_csv_without_id_column_fails_with_a_message(tmp_path, world):
    with pytest.raises(CommandError, match="id"):
        run(tmp_path, world, csv_text="name,email\nx,y\n")


def test_missing_file_exits_non_zero_from_the_shell(tmp_path, world):
    import subprocess
    import sys

    completed = subprocess.run(
        [sys.executable, "manage.py", "assemble_batch", "--journey", "x", "--step", "y",
         "--recipients", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    assert completed.returncode != 0
    assert "does not exist" in completed.stderr and "Traceback" not in completed.stderr


def test_every_assembled_recipient_is_in_the_delivery_log(tmp_path, world):
    out, _, _ = run(tmp_path, world)
    index = json.loads((out / "index.json").read_text())
    deliveries = {d.recipient_pseudonym: d for d in Delivery.objects.all()}
    # r1 and r2 went out; r4 (no consent), r5 (missing field) and the bad row did not.
    assert set(deliveries) == {pseudonymous_id("r1"), pseudonymous_id("r2")}
    for entry in index["entries"]:
        if entry["ok"]:
            delivery = deliveries[entry["recipient"]]
            assert delivery.output_sha256 == entry["manifest"]["output_sha256"]
            assert (delivery.token_id, delivery.user_id, delivery.job_id) == (None, None, None)
            assert (delivery.journey_slug, delivery.step_key, delivery.channel) == (
                "hcp-new", "welcome", "email")
    assert DeliveredVersion.objects.filter(
        version=world["versions"]["claim"]).count() == 2


def test_a_version_withdrawn_after_assembly_is_refused_at_commit_like_the_api(
        tmp_path, world, monkeypatch):
    """The withdrawal commits between assembly and the delivery-log write: the locked
    re-check refuses every recipient of that chunk, no file and no log row is written."""
    claim = world["versions"]["claim"]
    real_commit = serving.commit_deliveries

    def withdraw_then_commit(items, **kwargs):
        assert all(result.ok for result, _ in items[:1])  # assembled with the claim
        claim.state = "withdrawn"
        claim.save(update_fields=["state"])
        return real_commit(items, **kwargs)

    monkeypatch.setattr(serving, "commit_deliveries", withdraw_then_commit)
    out, stdout, _ = run(tmp_path, world)
    index = json.loads((out / "index.json").read_text())
    assert index["assembled"] == 0
    by_row = {entry["row"]: entry for entry in index["entries"]}
    for row in (2, 3):
        assert {"code": "withdrawn", "module": "CZN-EFF-001"}.items() <= by_row[row]["errors"][0].items()
    assert "withdrawn: 2" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["index.json"]
    assert Delivery.objects.count() == 0


def test_a_withdrawal_between_chunks_stops_the_later_chunks(tmp_path, world, monkeypatch):
    """Chunks commit one by one: the first went out before the withdrawal (and is logged),
    the next is refused."""
    claim = world["versions"]["claim"]
    real_commit = serving.commit_deliveries
    calls = []

    def commit_then_withdraw(items, **kwargs):
        calls.append(len(items))
        if len(calls) == 2:
            claim.state = "withdrawn"
            claim.save(update_fields=["state"])
        return real_commit(items, **kwargs)

    monkeypatch.setattr(serving, "commit_deliveries", commit_then_withdraw)
    monkeypatch.setattr(serving, "SERVE_CHUNK", 1)
    out, _, _ = run(tmp_path, world)
    by_row = {e["row"]: e for e in json.loads((out / "index.json").read_text())["entries"]}
    assert by_row[2]["ok"] and not by_row[3]["ok"]
    assert [e["code"] for e in by_row[3]["errors"]] == ["withdrawn"]
    assert list(Delivery.objects.values_list("recipient_pseudonym", flat=True)) == [
        pseudonymous_id("r1")]
