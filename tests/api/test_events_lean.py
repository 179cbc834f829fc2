"""The events endpoint's plain-Python batch path says exactly what DRF says.

`delivery.api.events.lean_events` validates a batch without EventSerializer, and the
results are rendered without EventResultSerializer. Each must be indistinguishable from
the serializer: the same accepted values, the same refusals (a refused batch goes through
the serializer, so the errors — codes, rows, field paths — are DRF's own), the same
rendered shape."""

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.api.events import lean_events, render_results
from delivery.api.serializers import EventResultSerializer, EventSerializer
from journeys.engagement import BatchOutcome
from journeys.models import EngagementEvent, Transition
from tests.api.builders import build_world, token, token_client

URL = "/api/v1/events/"

# Values at and around each rule of EventSerializer's fields.
TEXT_SAMPLES = ["hcp-new", "welcome", "crm-77", "opened", " padded ", "\tpadded\n", "", "   ",
                "x" * 40, "x" * 41, "x" * 80, "x" * 81, "y" * 200, "y" * 201, " " + "x" * 80,
                "a\x00b", "bad slug", "é", "dash-and_under", "line\n", "\ud800", "0", 0, 77,
                -5, 10**17, 10**19, 1.5, float("nan"), True, False, None, [], ["a"], {"a": 1}]
DAYS_SAMPLES = [1, 2, 3650, 3651, 0, -1, "5", "5.0", " 5 ", 5.0, 5.5, True, None, "", "x",
                "1" * 1001, [5]]
WHEN_SAMPLES = ["2026-03-02T09:00:00Z", "2026-03-02T09:00:00+02:00", "2026-03-02T09:00:00",
                "2026-03-02 09:00", "2026-03-02", "yesterday", "", None, 12, [],
                "2026-13-02T09:00:00Z", "2026-03-02T09:00:00.123456789Z"]
BASE = {"journey": "hcp-new", "step": "welcome", "recipient_id": "crm-77", "event": "opened"}


def variants():
    for key in ["journey", "step", "recipient_id", "event"]:
        for value in TEXT_SAMPLES:
            yield {**BASE, key: value}
        yield {k: v for k, v in BASE.items() if k != key}
    for value in DAYS_SAMPLES:
        yield {**BASE, "days": value}
    for value in WHEN_SAMPLES:
        yield {**BASE, "occurred_at": value}
    yield {**BASE, "extra": 1}
    yield {**BASE, "days": 3, "occurred_at": "2026-03-02T09:00:00Z"}
    yield from (value for value in TEXT_SAMPLES if not isinstance(value, dict))


def assert_alike(items):
    parsed = EventSerializer(data=items, many=True)
    valid = parsed.is_valid()
    lean = lean_events(items)
    if not valid:
        assert lean is None, items  # the serializer answers the errors
    elif lean is not None:
        assert lean == [dict(v) for v in parsed.validated_data]
        assert [list(v) for v in lean] == [list(v) for v in parsed.validated_data]  # key order


@pytest.mark.parametrize("item", list(variants()), ids=repr)
def test_lean_validation_agrees_with_the_serializer_on_each_edge(item):
    assert_alike([item])
    assert_alike([BASE, item, BASE])


WHEN = st.one_of(st.sampled_from(WHEN_SAMPLES),
                 st.datetimes(timezones=st.just(dt.UTC)).map(dt.datetime.isoformat))
TEXT = st.one_of(st.sampled_from(TEXT_SAMPLES), st.text(max_size=90), st.integers(),
                 st.floats())
GOOD = st.fixed_dictionaries(
    {"journey": st.sampled_from(["hcp-new", "other_2"]), "step": st.sampled_from(["welcome", "a"]),
     "recipient_id": st.one_of(st.sampled_from(["crm-1", "crm-2"]), st.integers(0, 10**6)),
     "event": st.sampled_from(["opened", "ignored", "no_engagement_for"])},
    optional={"days": st.integers(1, 3650), "occurred_at": WHEN})


def one_changed(item: dict):
    """`item` with one field given another value, or dropped, or an unknown one added."""
    keys = sorted([*item, "days", "occurred_at"])
    change = st.sampled_from(keys).flatmap(lambda key: (
        st.sampled_from(DAYS_SAMPLES) | st.integers() if key == "days"
        else WHEN if key == "occurred_at" else TEXT).map(lambda value: {**item, key: value}))
    drop = st.sampled_from(sorted(item)).map(
        lambda key: {k: v for k, v in item.items() if k != key})
    return st.one_of(change, drop, TEXT.map(lambda value: {**item, "extra": value}))


@settings(max_examples=300, deadline=None)
@given(items=st.lists(st.one_of(GOOD, GOOD.flatmap(one_changed), TEXT), min_size=1,
                      max_size=4))
def test_lean_validation_accepts_what_the_serializer_accepts_with_the_same_values(items):
    assert_alike(items)


@settings(max_examples=50, deadline=None)
@given(items=st.lists(GOOD, min_size=1, max_size=4))
def test_plain_valid_events_take_the_lean_path(items):
    items = [{k: v for k, v in item.items() if k != "occurred_at"} for item in items]
    assert lean_events(items) is not None


@pytest.mark.django_db
def test_results_render_as_the_serializer_renders_them():
    world = build_world()
    step, portal = world["step"], world["portal"]
    moving = Transition.objects.get(from_step=step)
    events = [{"journey": "hcp-new", "step": "welcome", "event": "ignored"}] * 3
    outcomes = [BatchOutcome(enrollment_id=1, next_step=step, paused=False, transition=None),
                BatchOutcome(enrollment_id=1, next_step=portal, paused=False,
                             transition=moving),
                BatchOutcome(enrollment_id=2, next_step=None, paused=True,
                             transition=moving)]
    expected = EventResultSerializer([
        {**event, "moved": o.moved, "paused": o.paused, "next_step": o.next_step}
        for event, o in zip(events, outcomes, strict=True)], many=True).data
    assert render_results(events, outcomes) == [dict(row) for row in expected]


@pytest.fixture
def client(db):
    build_world()
    _, key = token(channels=["email", "portal"])
    return token_client(key)


def event(**overrides):
    return {"journey": "hcp-new", "step": "welcome", "recipient_id": "crm-77",
            "event": "ignored", **overrides}


@pytest.mark.parametrize("bad, field, code", [
    ({"days": 0}, "[1].days", "min_value"),
    ({"days": "many"}, "[1].days", "invalid"),
    ({"recipient_id": ""}, "[1].recipient_id", "blank"),
    ({"recipient_id": "x" * 201}, "[1].recipient_id", "max_length"),
    ({"journey": "not a slug"}, "[1].journey", "invalid"),
    ({"occurred_at": "yesterday"}, "[1].occurred_at", "invalid"),
    ({"colour": "red"}, "[1].colour", "unknown_field"),
    ({"event": None}, "[1].event", "null"),
])
def test_a_bad_field_in_a_list_is_named_by_row_and_field(client, bad, field, code):
    response = client.post(URL, [event(), event(**bad), event()], format="json")
    assert response.status_code == 400, response.content
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [(field, code)]
    assert EngagementEvent.objects.count() == 0


def test_a_single_bad_object_is_named_by_field_alone(client):
    response = client.post(URL, event(days=0), format="json")
    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("days", "min_value")]
    response = client.post(URL, ["not an object"], format="json")
    assert response.status_code == 400
    assert [(e.get("field"), e["code"]) for e in response.json()["errors"]] == [("[0]", "invalid")]


def test_values_taken_the_long_way_are_recorded_alike(client):
    """A number as text, an id as a number, padded text: the serializer's values."""
    response = client.post(URL, [event(recipient_id=77), event(recipient_id=" 77 "),
                                 event(event="no_engagement_for", days="31")], format="json")
    assert response.status_code == 200, response.content
    assert [r["moved"] for r in response.json()] == [False, True, False]
    assert EngagementEvent.objects.get(event_type="no_engagement_for").days == 31
