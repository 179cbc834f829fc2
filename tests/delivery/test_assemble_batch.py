"""The assemble_batch command: files, index, summary, bad rows, clear failures."""

import json
from email import message_from_bytes
from email.policy import default

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db

CSV = (
    "id,title,first_name,last_name,specialty,consent_email\n"
    "r1,Dr.,Ann,Lee,Cardiology,yes\n"
    'r2,Dr.,Bob,"<script>alert(1)</script>{{ 7*7 }}",Nephrology,true\n'
    "r3,Dr.,Cy\n"
    "r4,Dr.,Di,Ng,Cardiology,no\n"
    "r5,Dr.,Ed,,Cardiology,1\n"
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


def test_csv_with_a_bad_row_reports_its_line_and_assembles_the_rest(tmp_path, world):
    out, stdout, stderr = run(tmp_path, world)
    index = json.loads((out / "index.json").read_text())
    by_row = {entry["row"]: entry for entry in index["entries"]}
    assert by_row[2]["ok"] and by_row[3]["ok"]
    assert by_row[4]["errors"][0]["code"] == "bad_row"
    assert "row 4" in stderr and "row 4" in stdout
    assert [e["code"] for e in by_row[5]["errors"]] == ["no_consent"]
    assert [e["code"] for e in by_row[6]["errors"]] == ["missing_recipient_field"] * 2
    assert "no_consent: 1" in stdout and "missing_recipient_field: 1" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["index.json", "row-000002.eml", "row-000003.eml"]
    message = message_from_bytes((out / "row-000003.eml").read_bytes(), policy=default)
    html = message.get_body(("html",)).get_content()
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;{{ 7*7 }}" in html
    assert message["Subject"] == "News for Dr. <script>alert(1)</script>{{ 7*7 }}"  # plain text
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
