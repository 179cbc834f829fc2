"""docs/journeys.md's worked channels run against a live server: enroll, lease, assemble,
acknowledge; and the push receiver: enroll, subscribe, receive a signed push, assemble,
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
    assert len(code) == 2  # polling, push
    exec(compile(code[0], str(DOC), "exec"), {})  # noqa: S102 - our own docs
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["welcome 200 delivered", "welcome 200 delivered"]
    assert DueTouchpoint.objects.filter(status="delivered").count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_worked_push_receiver_runs(live_env, capsys, settings, monkeypatch):
    from delivery import webhooks
    from orchestration import tasks
    from tests.security.corpus import STUB_DNS
    from tests.security.stubs import StubDNS

    # The example's receiver is plain http on 127.0.0.1; production refuses both.
    settings.TESSERA_WEBHOOK_ALLOW_LOOPBACK = True
    monkeypatch.setattr(webhooks.outbound, "resolve", StubDNS(STUB_DNS))
    code = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)[1]
    namespace = {"__name__": "push_receiver"}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - our own docs
    try:
        assert capsys.readouterr().out == ""  # subscribed after enrolling: nothing yet
        report = tasks.tick()  # the beat's next tick leases and pushes
        assert report["pushed"] == 1
    finally:
        namespace["server"].shutdown()
        namespace["server"].server_close()
    assert capsys.readouterr().out.splitlines() == ["touchpoint.due welcome 200"]
    assert DueTouchpoint.objects.get().status == "delivered"
