"""Recipient files of a batch job are read by the one parser (journeys/recipients.py):
bad rows keep their place with an `invalid_row` error, whole-file refusals are BatchErrors."""

import json

import pytest

from delivery import batch

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def channels(db):
    from content.models import Channel
    from tests.factories import term

    term(Channel, "email")
    term(Channel, "portal")


CSV = ("id,last_name,consent_email\n"
       "r1,One,yes\n"
       "r2,Two,maybe\n"
       "r3,Three\n"
       "r4,Four,on\n")


def test_invalid_rows_keep_their_place_with_their_row_number():
    recipients, errors = batch.parse_recipient_file(CSV.encode(), format="csv")
    assert recipients == [{"id": "r1", "last_name": "One", "consent": {"email": True}}, {}, {},
                          {"id": "r4", "last_name": "Four", "consent": {"email": True}}]
    assert sorted(errors) == ["1", "2"]
    assert [e["row"] for e in errors["1"] + errors["2"]] == [3, 4]
    assert {e["code"] for e in errors["1"] + errors["2"]} == {"invalid_row"}
    assert "maybe" not in errors["1"][0]["detail"]


def test_the_same_recipients_from_csv_json_and_ndjson():
    rows = [{"id": "r1", "last_name": "One", "consent_email": "yes"},
            {"id": "r2", "last_name": "Two", "consent": "email;portal"}]
    csv_text = "id,last_name,consent_email,consent\nr1,One,yes,\nr2,Two,,email;portal\n"
    from_csv = batch.parse_recipient_file(csv_text.encode(), format="csv")
    from_json = batch.parse_recipient_file(json.dumps(rows).encode(), format="json")
    from_ndjson = batch.parse_recipient_file(
        "".join(json.dumps(r) + "\n" for r in rows).encode(), format="ndjson")
    assert from_csv == from_json == from_ndjson
    assert from_csv[0][1]["consent"] == {"email": True, "portal": True}


@pytest.mark.parametrize("raw, code, status", [
    (b"id\n\xff\n", "invalid_csv", 400),
    (b"name\nx\n", "invalid_csv", 400),
    (b"id,frist_name\nr1,Ann\n", "invalid_csv", 400),
    (b"id\n", "invalid_csv", 400),
])
def test_whole_file_refusals_are_400(raw, code, status):
    with pytest.raises(batch.BatchError) as refused:
        batch.parse_recipient_file(raw, format="csv")
    assert (refused.value.code, refused.value.status) == (code, status)


def test_unknown_column_refusal_names_it():
    with pytest.raises(batch.BatchError) as refused:
        batch.parse_recipient_file(b"id,frist_name\nr1,Ann\n", format="csv")
    assert "'frist_name'" in refused.value.detail and "first_name" in refused.value.detail
    assert "Ann" not in refused.value.detail


def test_too_many_recipients_is_422(settings):
    settings.TESSERA_BATCH_MAX_RECIPIENTS = 2
    with pytest.raises(batch.BatchError) as refused:
        batch.parse_recipient_file(b"id\nr1\nr2\nr3\n", format="csv")
    assert (refused.value.code, refused.value.status) == ("too_many_recipients", 422)
    with pytest.raises(batch.BatchError):
        batch.check_count(3)
    batch.check_count(2)


@pytest.mark.parametrize("name, content_type, expected", [
    ("r.csv", "text/csv", "csv"),
    ("r.txt", "", "csv"),
    ("r.json", "", "json"),
    ("upload", "application/json", "json"),
    ("r.ndjson", "", "ndjson"),
    ("r.jsonl", "application/octet-stream", "ndjson"),
    ("upload", "application/x-ndjson", "ndjson"),
])
def test_upload_format(name, content_type, expected):
    assert batch.upload_format(name, content_type) == expected

