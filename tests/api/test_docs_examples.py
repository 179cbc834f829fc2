"""docs/api.md is a working client: its Python and curl examples run against a live server."""

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from delivery import webhooks
from delivery.models import AssemblyJob, Delivery, WebhookSubscription
from journeys.models import EngagementEvent
from tests.api.builders import build_world, token

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
BLOCK_RE = re.compile(r"```(python|sh)\n(.*?)```", re.DOTALL)


def blocks(language):
    return [code for lang, code in BLOCK_RE.findall(DOC.read_text()) if lang == language]


@pytest.fixture
def live_env(live_server, monkeypatch):
    build_world(slug="cardiozen-hcp-new-to-therapy", step_key="awareness-email")
    _, key = token(channels=["email", "portal"], rate_limit="10000/min")
    monkeypatch.setenv("TESSERA_URL", live_server.url)
    monkeypatch.setenv("TESSERA_TOKEN", key)
    return live_server


def test_python_examples_run_against_a_live_server(live_env, capsys):
    namespace: dict = {}
    for code in blocks("python"):
        exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - our own docs
    printed = capsys.readouterr().out
    assert "News for Dr. Morgan" in printed  # the single assembly
    assert Delivery.objects.count() == 1 + 3  # one single, three batch
    assert AssemblyJob.objects.get().idempotency_key == "newsletter-2026-11-23"
    assert EngagementEvent.objects.count() == 1
    assert WebhookSubscription.objects.count() == 1
    verify = namespace["verify_tessera_webhook"]
    body = b'{"event":"version.withdrawn"}'
    stamp = str(int(time.time()))
    headers = {"X-Tessera-Timestamp": stamp,
               "X-Tessera-Signature": webhooks.sign(namespace["SECRET"], stamp, body)}
    assert verify(namespace["SECRET"], headers, body)
    assert not verify(namespace["SECRET"], headers, body + b"x")
    assert not verify(namespace["SECRET"], dict(headers, **{"X-Tessera-Timestamp": "1000"}), body)


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_curl_examples_run_against_a_live_server(live_env, tmp_path):
    runnable = [code for code in blocks("sh") if code.lstrip().startswith(("curl", "printf"))]
    assert len(runnable) >= 4
    outputs = []
    for code in runnable:
        result = subprocess.run(["bash", "-c", code], cwd=tmp_path, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        if result.stdout.strip():
            outputs.append(json.loads(result.stdout))
    assemble = next(o for o in outputs if "subject" in o)
    assert assemble["subject"] == "News for Dr. Morgan"
    job = next(o for o in outputs if "status" in o and "total" in o)
    assert job["total"] == 2 and job["status"] == "done"
    assert any(o.get("next_step") for o in outputs if isinstance(o, dict))
