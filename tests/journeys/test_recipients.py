"""The one recipients parser (journeys/recipients.py): one dialect for CSV, JSON and NDJSON.

Each former difference between the two CSV dialects and the API serializer has a table
here: true/false words, length limits, unknown columns, consent forms, the error code."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from journeys import recipients as parser
from journeys.recipients import (
    FALSE,
    FIELD_MAX_LENGTHS,
    ID_MAX_LENGTH,
    TRUE,
    RecipientsError,
    parse_recipients,
)

CHANNELS = frozenset({"email", "portal", "rep"})
CORPUS = Path("/work/shared/corpus")


def parse(data, format="csv", **kwargs):
    return parse_recipients(data, format=format, channels=CHANNELS, **kwargs)


def one(data, format="csv"):
    parsed = parse(data, format)
    assert parsed.errors == [], [e.as_dict() for e in parsed.errors]
    assert len(parsed.recipients) == 1
    return parsed.recipients[0]


def one_error(data, format="csv") -> dict:
    parsed = parse(data, format)
    assert parsed.recipients == []
    assert len(parsed.errors) == 1
    return parsed.errors[0].as_dict()


def as_formats(rows: list[dict]) -> dict[str, str]:
    """The same recipients as CSV (header from the first row), JSON and NDJSON."""
    header = list(rows[0])
    csv_text = ",".join(header) + "\n" + "".join(
        ",".join('"' + str(r[h]).replace('"', '""') + '"' for h in header) + "\n" for r in rows)
    return {"csv": csv_text, "json": json.dumps(rows),
            "ndjson": "".join(json.dumps(r) + "\n" for r in rows)}


# --- true/false words: one vocabulary, case-insensitive, in every form ----------------

@pytest.mark.parametrize("word", sorted(TRUE) + ["YES", " True ", "On", "Y"])
@pytest.mark.parametrize("format", ["csv", "json", "ndjson"])
def test_true_words_give_consent(word, format):
    data = as_formats([{"id": "r1", "consent_email": word}])[format]
    assert one(data, format)["consent"] == {"email": True}


@pytest.mark.parametrize("word", sorted(FALSE) + ["NO", " False ", "Off", "N"])
@pytest.mark.parametrize("format", ["csv", "json", "ndjson"])
def test_false_words_refuse_consent(word, format):
    data = as_formats([{"id": "r1", "consent_email": word}])[format]
    assert one(data, format)["consent"] == {"email": False}


@pytest.mark.parametrize("value", ["", "  ", None])
@pytest.mark.parametrize("format", ["csv", "json", "ndjson"])
def test_an_empty_value_states_no_consent_and_contradicts_nothing(value, format):
    if format == "csv" and value is None:
        value = ""
    data = as_formats([{"id": "r1", "consent_email": value, "consent": "email"},
                       {"id": "r2", "consent_email": value, "consent": ""}])[format]
    assert [r["consent"] for r in parse(data, format).recipients] == [{"email": True}, {}]


@pytest.mark.parametrize("word", ["maybe", "2", "ja", "oui", "t", "f", "-1", "yes please"])
def test_other_words_are_a_row_error_that_does_not_echo_the_value(word):
    error = one_error(f"id,consent_email\nr1,{word}\n")
    assert error["code"] == "invalid_row" and error["row"] == 2
    assert error["detail"] == ("Row 2: consent_email must be one of 1/on/true/y/yes or "
                               "0/false/n/no/off, or empty.")


def test_json_booleans_and_words_mean_the_same():
    literal = one('[{"id": "r1", "consent": {"email": true, "portal": false}}]', "json")
    words = one('[{"id": "r1", "consent": {"email": "yes", "portal": "no"}}]', "json")
    assert literal == words == {"id": "r1", "consent": {"email": True, "portal": False}}


# --- limits: the serializer's lengths, for every column ------------------------------

LIMITS = [("id", ID_MAX_LENGTH), *FIELD_MAX_LENGTHS.items()]


@pytest.mark.parametrize("column, limit", LIMITS)
@pytest.mark.parametrize("format", ["csv", "json", "ndjson"])
def test_a_value_of_the_limit_passes_and_one_more_character_is_a_row_error(column, limit, format):
    base = {"id": "r1", "last_name": "Lee"}
    at_limit = one(as_formats([{**base, column: "x" * limit}])[format], format)
    assert at_limit[column] == "x" * limit
    error = one_error(as_formats([{**base, column: "x" * (limit + 1)}])[format], format)
    assert error["code"] == "invalid_row"
    assert f"{column} is longer than {limit} characters" in error["detail"]
    assert "xxxx" not in error["detail"]


def test_limits_are_the_former_serializer_limits():
    assert ID_MAX_LENGTH == 200
    assert FIELD_MAX_LENGTHS == {"title": 100, "first_name": 100, "last_name": 100,
                                 "specialty": 100, "practice_name": 200, "city": 100}


def test_too_many_recipients_is_refused_as_a_whole(settings):
    settings.TESSERA_BATCH_MAX_RECIPIENTS = 3
    assert len(parse("id\nr1\nr2\nr3\n").recipients) == 3
    with pytest.raises(RecipientsError) as refused:
        parse("id\nr1\nr2\nr3\nr4\n")
    assert refused.value.code == "too_many_recipients" and "at most 3" in refused.value.message
    # Bad rows count too: they are results of the batch.
    with pytest.raises(RecipientsError):
        parse('[{"id": "r1"}, {"id": "r2"}, {}, {"id": "r4"}]', "json")


# --- unknown columns: refused, naming the column -------------------------------------

@pytest.mark.parametrize("column, hint", [
    ("frist_name", "did you mean first_name?"),
    ("lastname", "did you mean last_name?"),
    ("speciality", "did you mean specialty?"),
    ("email", "use id, title"),
])
def test_an_unknown_csv_column_refuses_the_file_naming_it(column, hint):
    with pytest.raises(RecipientsError) as refused:
        parse(f"id,{column}\nr1,x\n")
    assert refused.value.code == "invalid_csv"
    assert repr(column) in refused.value.message and hint in refused.value.message


@pytest.mark.parametrize("format", ["json", "ndjson"])
def test_an_unknown_json_key_refuses_that_recipient_naming_it(format):
    parsed = parse(as_formats([{"id": "r1", "frist_name": "Ann"}])[format], format)
    assert parsed.recipients == []
    assert parsed.errors[0].as_dict()["code"] == "invalid_row"
    assert "'frist_name'" in parsed.errors[0].detail and "first_name" in parsed.errors[0].detail
    assert "Ann" not in parsed.errors[0].detail


def test_header_without_id_or_twice_the_same_column_is_refused():
    for text, expected in [("name\nx\n", "'id' column"), ("id,city,city\nr1,a,b\n", "twice"),
                           ("", "empty")]:
        with pytest.raises(RecipientsError, match=expected):
            parse(text)


# --- consent: both forms, checked against the taxonomy's channels --------------------

@pytest.mark.parametrize("data, format, consent", [
    ("id,consent_email,consent_portal\nr1,yes,no\n", "csv", {"email": True, "portal": False}),
    ("id,consent\nr1,email;portal\n", "csv", {"email": True, "portal": True}),
    ('id,consent\nr1,"email, portal"\n', "csv", {"email": True, "portal": True}),
    ("id,consent\nr1,\n", "csv", {}),
    ("id,consent,consent_rep\nr1,EMAIL,no\n", "csv", {"email": True, "rep": False}),
    ('[{"id": "r1", "consent": ["email", "portal"]}]', "json", {"email": True, "portal": True}),
    ('[{"id": "r1", "consent": "email;portal"}]', "json", {"email": True, "portal": True}),
    ('[{"id": "r1", "consent": {"email": true}}]', "json", {"email": True}),
    ('{"id": "r1", "consent_email": true}\n', "ndjson", {"email": True}),
])
def test_consent_forms(data, format, consent):
    assert one(data, format)["consent"] == consent


@pytest.mark.parametrize("data, format", [
    ("id,consent\nr1,emial\n", "csv"),
    ('[{"id": "r1", "consent": ["email", "fax"]}]', "json"),
    ('[{"id": "r1", "consent": {"emial": true}}]', "json"),
    ('{"id": "r1", "consent_fax": true}\n', "ndjson"),
    ('[{"id": "r1", "consent": 5}]', "json"),
    ("id,consent_email,consent\nr1,no,email\n", "csv"),  # contradiction
])
def test_consent_naming_an_unknown_channel_or_contradicting_itself_is_a_row_error(data, format):
    error = one_error(data, format)
    assert error["code"] == "invalid_row" and "consent" in error["detail"]


def test_a_consent_column_for_an_unknown_channel_refuses_the_file():
    with pytest.raises(RecipientsError) as refused:
        parse("id,consent_emial\nr1,yes\n")
    assert "consent_emial" in refused.value.message and "did you mean email?" in refused.value.message


@pytest.mark.django_db
def test_channels_default_to_the_taxonomy():
    from content.models import Channel
    from tests.factories import term

    term(Channel, "email")
    codes = set(Channel.objects.values_list("code", flat=True))
    assert parser.channel_codes() == codes
    parsed = parse_recipients("id,consent\nr1,email\nr2,no-such-channel\n", format="csv")
    assert parsed.recipients == [{"id": "r1", "consent": {"email": True}}]
    assert parsed.errors[0].row == 3


# --- one error code, with the row or line number --------------------------------------

def test_every_row_error_is_invalid_row_with_its_row_number():
    text = ("id,first_name,consent_email\n"
            "r1,Ann,yes\n"
            ",NoId,yes\n"           # line 3: no id
            "r3,Cy\n"               # line 4: too few values
            "\n"                    # line 5: blank, skipped
            'r5,"two\nlines",yes\n'  # lines 6-7: a line break in a name
            "r6,Di,yes,extra\n")    # line 8: too many values
    parsed = parse(text)
    assert [r["id"] for r in parsed.recipients] == ["r1"] and parsed.rows == [2]
    errors = [e.as_dict() for e in parsed.errors]
    assert [e["row"] for e in errors] == [3, 4, 7, 8]
    assert {e["code"] for e in errors} == {"invalid_row"}
    assert all(e["detail"].startswith(f"Row {e['row']}: ") for e in errors)
    assert "id is empty" in errors[0]["detail"]
    assert "line break" in errors[2]["detail"]
    for value in ("NoId", "Cy", "two", "Di", "extra"):
        assert all(value not in e["detail"] for e in errors)
    assert [item[0] for item in parsed.in_order()] == [2, 3, 4, 7, 8]


def test_ndjson_errors_carry_the_line_and_json_errors_the_position():
    parsed = parse('{"id": "r1"}\n\nnot json\n[1]\n{"id": "r5"}\n', "ndjson")
    assert parsed.rows == [1, 5] and [e.row for e in parsed.errors] == [3, 4]
    parsed = parse('[{"id": "r1"}, "r2", {"id": ""}]', "json")
    assert parsed.rows == [1] and [e.row for e in parsed.errors] == [2, 3]


@pytest.mark.parametrize("data, format, code", [
    (b"id\n\xff\xfe\n", "csv", "invalid_csv"),
    (b'{"id": "\xff"}', "ndjson", "invalid_ndjson"),
    ('{"id": "r1"}', "json", "invalid_json"),
    ("[" * 5000 + "]" * 5000, "json", "invalid_json"),
    ("[{", "json", "invalid_json"),
    ("[]", "json", "invalid_json"),
    ("id\n", "csv", "invalid_csv"),
    ("id", "xml", "invalid_format"),
])
def test_refusals_of_the_whole_input(data, format, code):
    with pytest.raises(RecipientsError) as refused:
        parse_recipients(data, format=format, channels=CHANNELS)
    assert refused.value.code == code


# --- the same data in every format gives the same recipients -------------------------

ROWS = [
    {"id": "r1", "title": "Dr.", "first_name": "Ann", "last_name": "Lee", "specialty": "Cardiology",
     "practice_name": "Lee & Partners, LLC", "city": "Zürich", "consent_email": "yes",
     "consent": "portal", "seen_modules": "MOD-1;MOD-2"},
    {"id": "r2", "title": "", "first_name": "Bob", "last_name": "O'Neil \"Bo\"", "specialty": "",
     "practice_name": "", "city": "", "consent_email": "no", "consent": "", "seen_modules": ""},
]


def test_csv_json_and_ndjson_give_the_same_recipients():
    results = {format: parse(text, format) for format, text in as_formats(ROWS).items()}
    assert all(r.errors == [] for r in results.values())
    assert results["csv"].recipients == results["json"].recipients == results["ndjson"].recipients
    assert results["csv"].recipients == [
        {"id": "r1", "title": "Dr.", "first_name": "Ann", "last_name": "Lee",
         "specialty": "Cardiology", "practice_name": "Lee & Partners, LLC", "city": "Zürich",
         "consent": {"email": True, "portal": True}, "seen_modules": ["MOD-1", "MOD-2"]},
        {"id": "r2", "first_name": "Bob", "last_name": "O'Neil \"Bo\"",
         "consent": {"email": False}},
    ]


def test_bytes_text_lines_and_a_decoded_list_are_all_accepted():
    text = as_formats(ROWS)
    csv_expected = parse(text["csv"]).recipients
    assert parse(("\ufeff" + text["csv"]).encode()).recipients == csv_expected
    assert parse(text["csv"].splitlines(keepends=True)).recipients == csv_expected
    assert parse(json.loads(text["json"]), "json").recipients == csv_expected
    assert parse(text["ndjson"].encode().splitlines(), "ndjson").recipients == csv_expected


def test_seen_modules_limits():
    assert one('[{"id": "r1", "seen_modules": ["A", "B"]}]', "json")["seen_modules"] == ["A", "B"]
    too_many = json.dumps([{"id": "r1", "seen_modules": [f"M{i}" for i in range(501)]}])
    assert "more than 500" in one_error(too_many, "json")["detail"]
    too_long = json.dumps([{"id": "r1", "seen_modules": ["M" * 41]}])
    assert "longer than 40" in one_error(too_long, "json")["detail"]


# --- hostile values are data: kept as they are, or refused with a clear message ------

def corpus() -> list[str]:
    lines = []
    for name in ("xss-vectors.txt", "template-injection.txt"):
        path = CORPUS / name
        if path.exists():
            lines += [line for line in path.read_text().splitlines() if line.strip()]
    return lines or ["<script>alert(1)</script>", "{{ 7*7 }}", "{% debug %}"]


@pytest.mark.parametrize("payload", corpus())
@pytest.mark.parametrize("format", ["csv", "json", "ndjson"])
def test_corpus_payloads_in_fields_are_kept_as_data(payload, format):
    rows = [{"id": payload[:200], "first_name": payload[:100], "practice_name": payload[:200],
             "consent_email": "yes"}]
    recipient = one(as_formats(rows)[format], format)
    assert recipient["first_name"] == payload[:100].strip()
    assert recipient["practice_name"] == payload[:200].strip()
    assert recipient["id"] == payload[:200].strip()


@pytest.mark.parametrize("payload", corpus()[:5])
def test_corpus_payloads_as_column_names_are_refused_clearly(payload):
    with pytest.raises(RecipientsError) as refused:
        parse(as_formats([{"id": "r1", payload: "x"}])["csv"])
    assert refused.value.code == "invalid_csv" and "unknown column" in refused.value.message.lower()


@pytest.mark.parametrize("value", ["a\x00b", "a\nb", "a\rb", "a\x1bb", "a\x7fb", "a\ud800b"])
def test_control_characters_are_refused_not_stored(value):
    error = one_error(json.dumps([{"id": "r1", "last_name": value}]), "json")
    assert "last_name contains a line break or control character" in error["detail"]


def test_the_parser_logs_nothing_about_recipients(caplog):
    caplog.set_level(logging.DEBUG)
    parse("id,first_name,consent_email\nsecret-id,SecretName,maybe\nr2,SecretToo\n")
    parse('[{"id": "secret-id", "first_name": "SecretName", "x": 1}]', "json")
    assert "Secret" not in caplog.text and "secret" not in caplog.text


# --- the API serializer: the same limits and rules -----------------------------------

def serialize(data):
    from journeys.api.recipients import RecipientSerializer

    serializer = RecipientSerializer(data=data, context={"channels": CHANNELS})
    valid = serializer.is_valid()
    return valid, (serializer.validated_data if valid else serializer.errors)


def test_the_serializer_declares_the_parser_limits():
    from journeys.api.recipients import RecipientSerializer

    fields = RecipientSerializer().fields
    assert fields["id"].max_length == ID_MAX_LENGTH
    for name, limit in FIELD_MAX_LENGTHS.items():
        assert fields[name].max_length == limit


@pytest.mark.parametrize("column, limit", LIMITS)
def test_the_serializer_refuses_over_long_values_like_the_parser(column, limit):
    ok, data = serialize({"id": "r1", column: "x" * limit})
    assert ok and data[column] == "x" * limit
    ok, errors = serialize({"id": "r1", column: "x" * (limit + 1)})
    assert not ok and errors[column][0].code == "max_length"


@pytest.mark.parametrize("data, field, code", [
    ({"id": "r1", "frist_name": "Ann"}, "frist_name", "unknown_field"),
    ({"id": "r1", "consent": {"emial": True}}, "consent", "unknown_channel"),
    ({"id": "r1", "consent": {"email": "maybe"}}, "consent.email", "invalid"),
    ({"id": "r1", "last_name": "a\nb"}, "last_name", "invalid"),
    ({"last_name": "Lee"}, "id", "required"),
    ({"id": "r1", "city": ["x"]}, "city", "invalid"),
])
def test_the_serializer_refuses_what_the_parser_refuses(data, field, code):
    ok, errors = serialize(data)
    assert not ok and errors[field][0].code == code
    assert one_error(json.dumps([data]), "json")["code"] == "invalid_row"


def test_the_serializer_gives_the_parsers_recipient():
    data = {"id": "r1", "first_name": " Ann ", "consent": ["email"], "consent_portal": "no",
            "seen_modules": ["M1"]}
    ok, validated = serialize(data)
    assert ok and validated == one(json.dumps([data]), "json")
    assert validated == {"id": "r1", "first_name": "Ann", "seen_modules": ["M1"],
                         "consent": {"email": True, "portal": False}}


def test_the_serializer_refuses_a_non_object():
    from rest_framework.exceptions import ValidationError

    from journeys.api.recipients import RecipientSerializer

    with pytest.raises(ValidationError) as refused:
        RecipientSerializer(context={"channels": CHANNELS}).run_validation("r1")
    assert refused.value.detail[0].code == "invalid"
