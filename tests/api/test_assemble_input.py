"""The assemble endpoint checks the usual body without building DRF's serializer
(`delivery.api.views.assemble_input`) and renders its answer without one
(`assembly_output`): both must give exactly what the serializers give — the same validated
data for every body the direct check accepts, the serializer (and its DESIGN.md error
codes) for everything else, and the same JSON out."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from delivery.api.serializers import AssembleRequestSerializer, AssemblyOutputSerializer
from delivery.api.views import _plain_input, assemble_input, assembly_output
from tests.api.builders import RECIPIENT, assemble_body, build_world, codes, token, token_client

CHANNELS = frozenset({"email", "portal", "sms"})
CONTEXT = {"channels": CHANNELS}
URL = "/api/v1/journeys/hcp-new/steps/welcome/assemble/"


def by_serializer(body) -> dict | None:
    serializer = AssembleRequestSerializer(data=body, context=CONTEXT)
    return dict(serializer.validated_data) if serializer.is_valid() else None


@pytest.mark.parametrize("body", [
    assemble_body(),
    assemble_body(channel="  email ", jurisdiction=" us", locale="en-GB "),
    assemble_body(recipient={"id": "x-1", "consent": ["email", "sms"], "CONSENT_PORTAL": False,
                             "seen_modules": ["A-1", "B-2"], "first_name": "  Ann ",
                             "unsubscribe_url": " https://u.example.test/x "}),
    assemble_body(recipient={"id": "x-2", "consent_email": "yes", "city": "Lyon"}),
    assemble_body(channel="x" * 40, locale="l" * 20),
])
def test_the_direct_check_gives_the_serializers_data(body):
    plain = _plain_input(body, CHANNELS)
    assert plain is not None  # the direct check takes these
    assert plain == by_serializer(body)
    assert assemble_input(body, CONTEXT) == plain


@pytest.mark.parametrize("body", [
    assemble_body(channel=""), assemble_body(channel=" "), assemble_body(channel=5),
    assemble_body(channel="x" * 41), assemble_body(jurisdiction="USA"),
    assemble_body(jurisdiction="U"), assemble_body(locale="l" * 21),
    assemble_body(locale="en\x00"), assemble_body(channel="émail"),
    assemble_body(recipient={"first_name": "No id"}),
    assemble_body(recipient={"id": "1", "consent": {"fax": True}}),
    assemble_body(recipient="not an object"), assemble_body(recipient=None),
    assemble_body(extra=1), assemble_body(unsubscribe_url="https://u.example.test/x"),
    {"channel": "email", "jurisdiction": "US", "locale": "en"}, [], "text",
])
def test_anything_else_goes_to_the_serializer(body):
    assert _plain_input(body, CHANNELS) is None
    expected = by_serializer(body)
    if expected is None:
        with pytest.raises(Exception) as refused:
            assemble_input(body, CONTEXT)
        assert refused.type.__name__ == "ValidationError"
    else:
        assert assemble_input(body, CONTEXT) == expected


def test_without_the_taxonomys_channels_the_serializer_decides():
    assert _plain_input(assemble_body(), None) is None


texts = st.one_of(st.text(max_size=45), st.integers(), st.none(), st.booleans())
# Mostly good values, so that the direct check takes many bodies.
codes_ = st.one_of(st.sampled_from(["email", " email ", "US", "us ", "en", "en-GB", "e\tmail",
                                    "sms", "x" * 40, "x" * 41, ""]), texts)
recipients = st.one_of(
    st.fixed_dictionaries({"id": st.one_of(st.sampled_from(["crm-1", " r 2 ", ""]), texts)},
                          optional={
        "first_name": texts, "last_name": texts, "consent": st.one_of(
            st.dictionaries(st.sampled_from(["email", "sms", "fax", " Email"]),
                            st.one_of(st.booleans(), texts), max_size=3),
            st.lists(st.sampled_from(["email", "portal", "fax"]), max_size=3), texts),
        "consent_sms": st.one_of(st.booleans(), texts),
        "seen_modules": st.one_of(st.lists(texts, max_size=3), texts),
        "unsubscribe_url": st.one_of(st.just("https://u.example.test/a"), texts),
        "nickname": texts}),
    texts)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.fixed_dictionaries(
    {"channel": codes_, "jurisdiction": codes_, "locale": codes_, "recipient": recipients},
    optional={"unsubscribe_url": texts, "other": texts}))
def test_any_body_the_direct_check_takes_the_serializer_takes_alike(body):
    plain = _plain_input(body, CHANNELS)
    if plain is not None:
        assert plain == by_serializer(body)
    else:
        assert assemble_input_or_none(body) == by_serializer(body)


def assemble_input_or_none(body):
    from rest_framework.exceptions import ValidationError

    try:
        return dict(assemble_input(body, CONTEXT))
    except ValidationError:
        return None


@pytest.mark.django_db
def test_the_endpoint_answers_what_the_output_serializer_renders():
    build_world()
    client = token_client(token()[1])
    response = client.post(URL, assemble_body(), format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"subject", "html", "text", "manifest", "headers"}
    assert body["headers"]["List-Unsubscribe"] == f"<{RECIPIENT['unsubscribe_url']}>"

    class Served:  # the result as the view had it
        subject, html, text, manifest, headers = (body[k] for k in
                                                  ("subject", "html", "text", "manifest",
                                                   "headers"))
    assert assembly_output(Served) == dict(AssemblyOutputSerializer(Served).data)


@pytest.mark.django_db
@pytest.mark.parametrize("body, status, expected", [
    (assemble_body(channel=""), 400, ["blank"]),
    (assemble_body(jurisdiction="USA"), 400, ["max_length"]),
    (assemble_body(extra=1), 400, ["unknown_field"]),
    (assemble_body(recipient={"first_name": "No id"}), 400, ["required"]),
])
def test_bad_bodies_keep_their_codes_through_the_endpoint(body, status, expected):
    build_world()
    client = token_client(token()[1])
    response = client.post(URL, body, format="json")
    assert response.status_code == status, response.content
    assert codes(response) == expected
