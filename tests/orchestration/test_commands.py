"""The CSV import and the lifecycle command, through call_command."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from journeys.models import Enrollment, Step
from orchestration import lifecycle
from orchestration.models import EnrollmentProfile, JourneyRelease, Move


def test_csv_import_is_idempotent_and_refuses_names(world, tmp_path, capsys):
    good = tmp_path / "r.csv"
    good.write_text("id,market,specialty,consent_email,channels\n"
                    "crm-1,US,cardiology,yes,email;portal\ncrm-2,DE,,no,\n")
    call_command("enroll_recipients", str(good), journey="hcp-new")
    call_command("enroll_recipients", str(good), journey="hcp-new")
    out = capsys.readouterr().out
    assert "enrolled 2 new" in out and "0 new, 2 already enrolled" in out
    first = EnrollmentProfile.objects.get(specialty="cardiology")
    assert first.consent == {"email": True} and first.channel_preferences == ["email", "portal"]
    bad = tmp_path / "bad.csv"
    bad.write_text("id,first_name\ncrm-3,Alex\n")
    with pytest.raises(CommandError, match="nobody was enrolled"):
        call_command("enroll_recipients", str(bad), journey="hcp-new")
    assert "Alex" not in capsys.readouterr().err
    assert Enrollment.objects.count() == 2


def test_lifecycle_publish_moves_people_by_the_migration_rule(world, tmp_path):
    good = tmp_path / "r.csv"
    good.write_text("id,market\ncrm-1,US\n")
    call_command("enroll_recipients", str(good), journey="hcp-new")
    call_command("journey_lifecycle", "hcp-new", "pause")
    assert lifecycle.state_of(world["journey"]) == "paused"
    new_welcome = Step.objects.create(journey=world["journey"], stage=world["step"].stage,
                                      key="welcome-v2", name="Welcome v2",
                                      channel=world["step"].channel, order=0)
    with pytest.raises(CommandError, match="unknown_step"):
        call_command("journey_lifecycle", "hcp-new", "publish", migrate=["welcome=nope"])
    call_command("journey_lifecycle", "hcp-new", "publish", migrate=["welcome=welcome-v2"])
    assert list(JourneyRelease.objects.values_list("number", "state")) == [
        (2, "paused"), (1, "retired")]
    assert Enrollment.objects.get().current_step == new_welcome
    assert Move.objects.get().reason == "migration release 1 → 2: welcome → welcome-v2"
    call_command("journey_lifecycle", "hcp-new", "retire")
    assert lifecycle.state_of(world["journey"]) == "retired"
