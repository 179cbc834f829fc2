"""The API's JSON renderer (cms.api.renderers, orjson) says what DRF's JSONRenderer says:
the same JSON values for any JSON-like data and the hostile corpus, dates and decimals by
DRF's own encoder, U+2028/U+2029 escaped, and DRF's renderer itself wherever orjson
cannot follow (indentation, integers beyond 64 bits)."""

import datetime
import decimal
import json
import uuid

import pytest
from django.utils.translation import gettext_lazy
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.renderers import JSONRenderer as DRFRenderer

from cms.api.renderers import JSONRenderer
from tests.api.builders import token, token_client
from tests.journeys.test_assembly import payloads

ours, drf = JSONRenderer(), DRFRenderer()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30)


@given(json_values)
def test_any_json_value_renders_to_the_same_json(value):
    mine, theirs = ours.render(value), drf.render(value)
    assert (mine == theirs == b"") if value is None else json.loads(mine) == json.loads(theirs)


def test_the_hostile_corpus_renders_byte_for_byte_as_drf_does():
    data = {"payloads": payloads(), "separators": "a\u2028b\u2029c", "nul": "\x00\x1f"}
    assert ours.render(data) == drf.render(data)
    assert b"\\u2028" in ours.render(data) and "\u2028".encode() not in ours.render(data)


def test_what_orjson_does_not_know_is_encoded_by_drfs_encoder():
    moment = datetime.datetime(2026, 11, 29, 15, 44, 3, 402139, tzinfo=datetime.UTC)
    data = {"at": moment, "day": moment.date(), "price": decimal.Decimal("1.10"),
            "id": uuid.UUID(int=7), "label": gettext_lazy("Approved"), 3: "int key"}
    assert ours.render(data) == drf.render(data)
    assert json.loads(ours.render(data))["at"] == "2026-11-29T15:44:03.402139Z"


def test_indentation_and_huge_integers_go_to_drfs_renderer():
    data = {"n": 2**70, "nested": {"a": [1, 2]}}
    assert ours.render(data) == drf.render(data)
    assert ours.render(data, "application/json; indent=4") == drf.render(
        data, "application/json; indent=4")


@pytest.mark.django_db
def test_the_api_answers_with_this_renderer():
    _, key = token()
    response = token_client(key).get("/api/v1/modules/")
    assert response.status_code == 200
    assert type(response.accepted_renderer) is JSONRenderer
