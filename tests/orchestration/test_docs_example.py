"""docs/journeys.md's worked channel runs against a live server: enroll, lease, assemble,
acknowledge."""

import re
from pathlib import Path

import pytest

from orchestration import lifecycle
from orchestration.models import DueTouchpoint, SendWindow
from tests.api.builders import build_world, token

DOC = Path(__file__).resolve().parents[2] / "docs" / "journeys.md"


@pytest.fixture
def live_env(live_server, monkeypatch):
    from django.utils import timezone

    world = build_world(slug="cardiozen-hcp-new-to-therapy", step_key="welcome")
    lifecycle.go_live(world["journey"], now=timezone.now())
    # The real clock runs this test: the US window is open around the clock here.
    SendWindow.objects.create(market="US", time_zone="America/New_York", start_hour=0,
                              end_hour=24, weekdays=list(range(7)))
    _, key = token(channels=["email"], rate_limit="10000/min")
    monkeypatch.setenv("TESSERA_URL", live_server.url)
    monkeypatch.setenv("TESSERA_TOKEN", key)
    return live_server


@pytest.mark.django_db(transaction=True)
def test_the_worked_channel_example_runs(live_env, capsys):
    code = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert len(code) == 1
    exec(compile(code[0], str(DOC), "exec"), {})  # noqa: S102 - our own docs
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["welcome 200 delivered", "welcome 200 delivered"]
    assert DueTouchpoint.objects.filter(status="delivered").count() == 2
