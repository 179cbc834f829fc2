"""A schemathesis run over every API operation with the hostile corpus: each generated case
is also sent with nested-JSON and huge-number bodies, and with huge numbers in every query
parameter. Not one response may be a 5xx, and every answer is JSON."""

import copy

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

# The project's schemathesis set-up (WSGI app, auth, hypothesis-jsonschema shim): reused,
# not restated.
from tests.api.test_schema import (  # noqa: F401 - fixtures
    _hypothesis_jsonschema_compat,
    api_schema,
    auth_headers,
    raw_schema,
)
from tests.security.corpus import HUGE_NUMBERS, MALFORMED_JSON, NESTED_JSON

pytestmark = pytest.mark.django_db

HOSTILE_BODIES = [p.encode("utf-8", "surrogatepass") for p in NESTED_JSON + HUGE_NUMBERS
                  + MALFORMED_JSON]
HOSTILE_QUERY_VALUES = ["9" * 5000, "1" * 100_000, "1e999999", "-1e999999", "NaN",
                        "[" * 1000]

schema = schemathesis.from_pytest_fixture("api_schema")


def assert_json_and_no_5xx(response, what):
    assert response.status_code < 500, (what, response.status_code, response.get_data()[:300])
    if response.status_code >= 400:
        assert response.headers["Content-Type"].startswith("application/json"), what


@schema.parametrize()
@settings(max_examples=3, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_hostile_bodies_and_numbers_never_get_a_5xx(case, auth_headers):  # noqa: F811
    if case.media_type == "multipart/form-data" and not isinstance(case.body, dict):
        return  # schemathesis cannot serialise these (see tests/api/test_schema.py)
    label = f"{case.method} {case.formatted_path}"
    assert_json_and_no_5xx(case.call_wsgi(headers=auth_headers), label)
    if case.method in {"POST", "PUT", "PATCH"}:
        for body in HOSTILE_BODIES:
            hostile = copy.copy(case)
            hostile.media_type, hostile.body = "application/json", body
            assert_json_and_no_5xx(hostile.call_wsgi(headers=auth_headers),
                                   f"{label} body {body[:20]!r}…({len(body)})")
    for name in (case.query or {}):
        for value in HOSTILE_QUERY_VALUES:
            hostile = copy.copy(case)
            hostile.query = {**case.query, name: value}
            assert_json_and_no_5xx(hostile.call_wsgi(headers=auth_headers),
                                   f"{label} ?{name}={value[:12]}…({len(value)})")
