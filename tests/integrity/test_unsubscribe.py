"""The unsubscribe link: what is usable, where it is given (API field, recipient key, CSV
column), that every email carries it with the RFC 8058 headers, and that it is never kept."""

import json

import pytest

from delivery.models import Delivery
from journeys import unsubscribe
from journeys.recipients import parse_recipients
from tests.api.builders import RECIPIENT, assemble_body, build_world, codes, token, token_client

URL = "/api/v1/journeys/hcp-new/steps/welcome/assemble/"
PORTAL_URL = "/api/v1/journeys/hcp-new/steps/portal-followup/assemble/"
LINK = "https://prefs.example.test/unsubscribe/crm-0001?t=abc&list=hcp"
WITHOUT_LINK = {k: v for k, v in RECIPIENT.items() if k != "unsubscribe_url"}


@pytest.mark.parametrize("value", [
    "https://prefs.example.test/u", "https://prefs.example.test:8443/u?a=1&b=%20",
    "HTTPS://PREFS.EXAMPLE.TEST/u",
])
def test_usable_links(value):
    assert unsubscribe.url_problem(value) == ""


@pytest.mark.parametrize("value, words", [
    (None, "empty"), ("", "empty"), ("http://prefs.example.test/u", "https"),
    ("javascript:alert(1)", "https"), ("data:text/html,<b>x</b>", "space, quote"),
    ("https://user:pw@prefs.example.test/u", "user name"), ("https://user@prefs.example.test/u",
                                                            "user name"),
    ("https:///nohost", "no host"), ("https://prefs.example.test/u>\r\nBcc: a@b", "control"),
    ("https://prefs.example.test/" + "a" * 2000, "longer than 2000"), ("https://h:99999/", "well-formed"),
    (42, "empty"),
])
def test_unusable_links_say_why_without_echoing(value, words):
    problem = unsubscribe.url_problem(value)
    assert words in problem
    assert not isinstance(value, str) or not value or value not in problem


def test_headers_are_rfc_8058_one_click():
    assert unsubscribe.headers(LINK) == {"List-Unsubscribe": f"<{LINK}>",
                                         "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def test_the_recipients_parser_takes_an_unsubscribe_url_column():
    parsed = parse_recipients(f"id,unsubscribe_url\nr1,{LINK}\nr2,\nr3,http://x.test/u\n",
                              format="csv", channels={"email"})
    assert [r.get("unsubscribe_url") for r in parsed.recipients] == [LINK, None]
    [error] = parsed.errors
    assert error.row == 4 and "https" in error.detail and "x.test" not in error.detail


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def client(world):
    _, key = token(channels=("email", "portal"))
    return token_client(key)


def test_an_email_returns_the_link_in_its_footer_and_headers(client):
    response = client.post(URL, assemble_body(recipient=WITHOUT_LINK, unsubscribe_url=LINK),
                           format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["headers"] == {"List-Unsubscribe": f"<{LINK}>",
                               "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    assert 'href="https://prefs.example.test/unsubscribe/crm-0001?t=abc&amp;list=hcp"' in body["html"]
    assert f"Unsubscribe: {LINK}" in body["text"]
    assert "1-800-FDA-1088" in body["html"]  # the footer's adverse-event line
    # Never stored: the delivery log has neither the link nor its parts.
    stored = json.dumps(list(Delivery.objects.values()), default=str)
    assert "prefs.example.test" not in stored and "crm-0001?t=abc" not in stored


def test_the_link_may_come_in_the_recipient_as_in_batches(client):
    response = client.post(URL, assemble_body(recipient={**WITHOUT_LINK, "unsubscribe_url": LINK}),
                           format="json")
    assert response.status_code == 200, response.content
    assert response.json()["headers"]["List-Unsubscribe"] == f"<{LINK}>"


def test_an_email_without_the_link_is_refused_missing_unsubscribe(client):
    response = client.post(URL, assemble_body(recipient=WITHOUT_LINK), format="json")
    assert response.status_code == 422
    assert codes(response) == ["missing_unsubscribe"]
    assert Delivery.objects.count() == 0


def test_every_failing_rule_comes_together_with_missing_unsubscribe(client):
    recipient = {**WITHOUT_LINK, "consent": {"email": False}}
    response = client.post(URL, assemble_body(recipient=recipient), format="json")
    assert sorted(codes(response)) == ["missing_unsubscribe", "no_consent"]


@pytest.mark.parametrize("bad", ["http://prefs.example.test/u", "javascript:alert(1)",
                                 "https://u:p@prefs.example.test/", "https://e.test/" + "a" * 2001])
def test_an_unusable_link_is_a_400_naming_the_field(client, bad):
    for body in (assemble_body(recipient=WITHOUT_LINK, unsubscribe_url=bad),
                 assemble_body(recipient={**WITHOUT_LINK, "unsubscribe_url": bad})):
        response = client.post(URL, body, format="json")
        assert response.status_code == 400, response.content
        assert "unsubscribe_url" in response.content.decode()
        assert bad not in response.content.decode()


def test_two_different_links_are_a_400(client):
    body = assemble_body(recipient=dict(RECIPIENT), unsubscribe_url=LINK)
    assert RECIPIENT["unsubscribe_url"] != LINK
    assert client.post(URL, body, format="json").status_code == 400


def test_a_portal_page_needs_no_link_and_has_no_headers(client):
    response = client.post(PORTAL_URL, assemble_body(channel="portal", recipient=WITHOUT_LINK),
                           format="json")
    assert response.status_code == 200, response.content
    assert response.json()["headers"] == {}
    assert "Unsubscribe" not in response.json()["html"]
