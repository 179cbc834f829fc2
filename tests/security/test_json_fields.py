"""JSON typed by people (admin JSON fields) and read from recipient files goes through the
same guard as the API's bodies: too deep or out-of-range numbers are a clear error, never
a 500 and never a stored value."""

import pytest

from journeys.recipients import RecipientsError, parse_recipients

DEEP = "[" * 5000 + "]" * 5000
HUGE = '{"first_name": 1e999999}'


@pytest.mark.django_db
@pytest.mark.parametrize("text", [DEEP, '{"a":' * 40 + "1" + "}" * 40])
def test_a_too_deep_json_recipients_file_is_refused(text):
    with pytest.raises(RecipientsError) as refused:
        parse_recipients(text, format="json")
    assert refused.value.code == "invalid_json"


@pytest.mark.django_db
@pytest.mark.parametrize("line", [DEEP, HUGE])
def test_a_hostile_ndjson_line_is_a_row_error(line):
    parsed = parse_recipients('{"id": "r1"}\n' + line + "\n", format="ndjson")
    assert [r["id"] for r in parsed.recipients] == ["r1"]
    assert [e.row for e in parsed.errors] == [2]
