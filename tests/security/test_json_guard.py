"""The JSON guard: nested JSON, huge numbers and malformed bodies are a coded 400 (never a
500, never HTML) on every JSON endpoint; the guard itself refuses beyond its limits."""

import json

import pytest
from django.core.exceptions import ValidationError

from cms.api import parsers
from tests.api.builders import build_world, token, token_client
from tests.security.corpus import HUGE_NUMBERS, MALFORMED_JSON, NESTED_JSON

ENDPOINTS = ["/api/v1/events/", "/api/v1/journeys/hcp-new/steps/welcome/assemble/",
             "/api/v1/assemblies/", "/api/v1/webhooks/"]


@pytest.fixture
def client(db):
    build_world()
    _, key = token(rate_limit="100000/min")
    return token_client(key)


def post_raw(client, url, text):
    return client.generic("POST", url, text.encode("utf-8", "surrogatepass"),
                          content_type="application/json")


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize("payload", NESTED_JSON, ids=lambda p: f"nested-{len(p)}")
def test_nested_json_is_400_too_deep(client, url, payload):
    response = post_raw(client, url, payload)
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"] == "application/json"
    [error] = response.json()["errors"]
    assert error["code"] == "too_deep" and str(parsers.MAX_DEPTH) in error["detail"]


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize("payload", HUGE_NUMBERS, ids=lambda p: f"number-{p[:12]}-{len(p)}")
def test_huge_numbers_are_400_number_out_of_range(client, url, payload):
    response = post_raw(client, url, payload)
    assert response.status_code == 400, response.content[:300]
    assert [e["code"] for e in response.json()["errors"]] == ["number_out_of_range"]


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize("payload", MALFORMED_JSON)
def test_malformed_json_is_400_malformed_json(client, url, payload):
    response = post_raw(client, url, payload)
    assert response.status_code == 400, response.content[:300]
    assert [e["code"] for e in response.json()["errors"]] == ["malformed_json"]


def test_body_over_the_size_limit_is_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = post_raw(client, "/api/v1/events/", json.dumps({"pad": "x" * 2000}))
    assert response.status_code == 413
    assert [e["code"] for e in response.json()["errors"]] == ["request_too_large"]


def test_the_guard_accepts_the_deepest_allowed_document_and_ordinary_numbers():
    deepest = "[" * parsers.MAX_DEPTH + "]" * parsers.MAX_DEPTH
    assert parsers.depth_of(parsers.loads(deepest)) == parsers.MAX_DEPTH
    assert parsers.loads(b'{"n": 9223372036854775807, "m": -9223372036854775808, "f": 1.5e300}') \
        == {"n": 2 ** 63 - 1, "m": -(2 ** 63), "f": 1.5e300}
    with pytest.raises(parsers.JSONRefused) as refused:
        parsers.loads("[" * (parsers.MAX_DEPTH + 1) + "]" * (parsers.MAX_DEPTH + 1))
    assert refused.value.code == "too_deep"
    with pytest.raises(parsers.JSONRefused) as refused:
        parsers.loads("9223372036854775808")
    assert refused.value.code == "number_out_of_range"


def test_depth_counts_objects_and_arrays_without_recursion():
    value = []
    for _ in range(50_000):  # far deeper than the interpreter could recurse
        value = [value]
    assert parsers.depth_of(value) > parsers.MAX_DEPTH
    assert parsers.depth_of({"a": [{"b": 1}], "c": 2}) == 3
    assert parsers.depth_of(7) == 0


def test_form_field_refuses_deep_json_as_a_form_error():
    field = parsers.GuardedJSONFormField()
    assert field.clean('{"en": {"greeting": "Hello"}}') == {"en": {"greeting": "Hello"}}
    with pytest.raises(ValidationError) as refused:
        field.clean("[" * 10_000 + "]" * 10_000)
    assert refused.value.code == "too_deep"
    with pytest.raises(ValidationError) as refused:
        field.clean("1e999999")
    assert refused.value.code == "number_out_of_range"
