"""manage.py import_events: NDJSON in, the same outcome as the API; a bad line imports
nothing and names the line."""

import json

import pytest
from django.core.management import CommandError, call_command

from journeys.models import EngagementEvent, Enrollment

pytestmark = pytest.mark.django_db


def write(tmp_path, lines):
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def event(**over):
    return json.dumps({"journey": "mini", "step": "a", "recipient_id": "crm-1",
                       "event": "opened", "occurred_at": "2026-03-02T09:00:00Z", **over})


def test_events_are_imported_and_move_recipients(mini, tmp_path, capsys):
    path = write(tmp_path, [event(), "", event(recipient_id="crm-2", event="ignored")])
    call_command("import_events", path, "--no-progress")
    assert EngagementEvent.objects.count() == 2
    moved = {e.current_step.key for e in Enrollment.objects.all()}
    assert moved == {"b", "c"}  # a --opened--> b, a --ignored--> c
    assert "crm-1" not in "".join(Enrollment.objects.values_list("recipient_hash", flat=True))
    assert "imported 2 events" in capsys.readouterr().out


@pytest.mark.parametrize("bad, says", [
    ("{not json", "Malformed JSON"),
    ('["a list"]', "one JSON object"),
    (event(step="zz"), "no step 'zz'"),
    (event(event="teleported"), "unknown event type"),
    (event(event="no_engagement_for"), "needs days"),
    (event(recipient_id=""), "recipient_id"),
])
def test_a_bad_line_imports_nothing_and_is_named(mini, tmp_path, capsys, bad, says):
    path = write(tmp_path, [event(), bad])
    with pytest.raises(CommandError, match="Nothing imported"):
        call_command("import_events", path, "--no-progress")
    assert EngagementEvent.objects.count() == 0
    err = capsys.readouterr().err
    assert "line 2:" in err and says in err


def test_a_missing_file_is_a_clear_error(mini, tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_events", str(tmp_path / "nope.ndjson"))
