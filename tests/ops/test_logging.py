"""Structured logs: JSON lines with request ids, one line per request, no recipient data."""

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cms.logging import JsonFormatter, PersonalDataFilter, logging_config

CANARY = {
    "id": "rcpt-canary-7f3a",
    "title": "Dr",
    "first_name": "Zebulonia",
    "last_name": "Quixtrandel",
    "email": "zebulonia.quixtrandel@canary.invalid",
    "specialty": "cardiology",
}
CANARY_VALUES = ("Zebulonia", "Quixtrandel", "canary.invalid")


@pytest.fixture
def json_log():
    """Capture what the production handler writes (JSON formatter + personal-data filter)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(PersonalDataFilter())
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)


@pytest.mark.django_db
def test_each_request_logs_one_json_line_with_method_path_status_duration_and_request_id(
        client, json_log):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="req-ops-123")

    assert response["X-Request-ID"] == "req-ops-123"
    lines = [entry for entry in json_log() if entry["logger"] == "tessera.request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["level"] == "INFO"
    assert line["request_id"] == "req-ops-123"
    assert line["method"] == "GET"
    assert line["path"] == "/healthz"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float)
    assert line["time"].endswith("+00:00")
    assert line["message"].startswith("GET /healthz 200 ")


@pytest.mark.django_db
def test_request_line_never_carries_the_body_or_the_query_string(client, json_log):
    client.post("/healthz?email=zebulonia.quixtrandel%40canary.invalid",
                data=json.dumps({"recipient": CANARY}), content_type="application/json")

    output = json.dumps(json_log())
    assert '"path": "/healthz"' in output
    for value in CANARY_VALUES:
        assert value not in output


@pytest.mark.django_db
def test_a_request_without_id_gets_a_generated_one_on_its_log_line(client, json_log):
    response = client.get("/healthz")

    [line] = [entry for entry in json_log() if entry["logger"] == "tessera.request"]
    assert line["request_id"] == response["X-Request-ID"]
    assert len(line["request_id"]) == 32


def test_personal_keys_are_redacted_from_extras_and_mapping_arguments(json_log):
    log = logging.getLogger("tessera.test")
    log.info("assembled for %(recipient)s", {"recipient": CANARY, "step": "welcome"})
    log.info("assembled", extra={"recipient": CANARY, "job": {"id": 7, "email": CANARY["email"]}})
    log.info("celery line %(return_value)s", {"return_value": repr(CANARY), "id": "t-1"})

    entries = json_log()
    output = json.dumps(entries)
    for value in CANARY_VALUES:
        assert value not in output
    assert entries[0]["message"] == "assembled for [redacted]"
    assert entries[1]["recipient"] == "[redacted]"
    assert entries[1]["job"] == {"id": 7, "email": "[redacted]"}
    assert entries[1]["redacted"] == ["recipient"]
    assert entries[2]["message"] == "celery line [redacted]"


def test_celery_task_lines_keep_the_task_name_but_not_its_arguments_or_result(json_log):
    context = {"name": "delivery.tasks.assemble_chunk", "id": "t-2", "args": repr([CANARY]),
               "kwargs": "{}", "return_value": repr(CANARY)}
    logging.getLogger("celery.app.trace").info(
        "Task %(name)s[%(id)s] succeeded: %(return_value)s", context, extra={"data": context})

    [entry] = json_log()
    assert entry["message"] == "Task delivery.tasks.assemble_chunk[t-2] succeeded: [redacted]"
    assert entry["data"]["args"] == "[redacted]"
    assert entry["data"]["name"] == "delivery.tasks.assemble_chunk"
    for value in CANARY_VALUES:
        assert value not in json.dumps(entry)


def test_exceptions_are_logged_as_one_json_line(json_log):
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("tessera.test").exception("failed")

    [entry] = json_log()
    assert entry["level"] == "ERROR"
    assert "ValueError: boom" in entry["exc_info"]


def test_log_format_setting_selects_json_or_plain():
    assert logging_config(log_format="json", level="INFO")["handlers"]["console"]["formatter"] == "json"
    assert logging_config(log_format="plain", level="INFO")["handlers"]["console"]["formatter"] == "plain"


def test_tessera_log_format_json_makes_a_django_process_log_json_lines(tmp_path):
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "TESSERA_LOG_FORMAT": "json", "DJANGO_SETTINGS_MODULE": "cms.settings"}
    env.pop("DATABASE_URL", None)
    code = ("import django, logging; django.setup(); "
            "logging.getLogger('tessera.ops').warning('hello %s', 'operator', "
            "extra={'first_name': 'Zebulonia'})")
    result = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, capture_output=True,
                            text=True, timeout=60, check=True)

    [line] = [json.loads(raw) for raw in result.stderr.splitlines() if raw.startswith("{")]
    assert line["message"] == "hello operator"
    assert line["logger"] == "tessera.ops"
    assert line["level"] == "WARNING"
    assert line["request_id"] == "-"
    assert line["first_name"] == "[redacted]"
    assert "Zebulonia" not in result.stderr
