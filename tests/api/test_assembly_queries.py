"""A warm single assembly through the API costs a fixed handful of queries: the catalog
epoch, the enrollment, the locked re-check and the delivery log's insert round trip(s) —
the token scope, the step and its prepared context come from process caches keyed by the
epoch, and any catalog change makes them read again."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from delivery import serving
from delivery.models import Delivery
from tests.api.builders import assemble_body, build_world, codes, token, token_client

# On PostgreSQL the locked re-check and the delivery log are ONE statement (a data-modifying
# WITH that locks the versions FOR SHARE and inserts only if they are deliverable), run as
# its own transaction: the epoch, the enrollment and that statement, no BEGIN or COMMIT.
# SQLite has no data-modifying WITH: the re-check and one INSERT per table, in a
# transaction. BEGIN and COMMIT are counted apart: round trips too, but no query.
POSTGRES = connection.vendor == "postgresql"
WARM_QUERIES = 3 if POSTGRES else 5
TRANSACTION_CONTROL = ("BEGIN", "COMMIT")
URL = "/api/v1/journeys/hcp-new/steps/welcome/assemble/"


@pytest.fixture
def world(transactional_db):
    # transactional_db: the view's own transaction is a real BEGIN/COMMIT (not counted),
    # as in production, instead of savepoints inside the test's transaction.
    return build_world()


@pytest.fixture
def client(world):
    _, key = token()
    return token_client(key)


def warm_up(client):
    response = client.post(URL, assemble_body(), format="json")
    assert response.status_code == 200, response.content


def test_warm_single_assembly_takes_at_most_the_fixed_queries(client):
    warm_up(client)
    with CaptureQueriesContext(connection) as queries:
        response = client.post(URL, assemble_body(), format="json")
    assert response.status_code == 200, response.content
    listing = "\n".join(q["sql"][:160] for q in queries)
    statements = [q["sql"] for q in queries if not q["sql"].startswith(TRANSACTION_CONTROL)]
    assert len(statements) <= WARM_QUERIES, listing
    assert len(queries) <= WARM_QUERIES + (0 if POSTGRES else 2), listing
    assert Delivery.objects.count() == 2
    latest = Delivery.objects.latest("pk")
    assert sorted(latest.deliveredversion_set.values_list("version_id", flat=True)) == sorted(
        m["version_id"] for m in latest.manifest["modules"])


@pytest.mark.skipif(not POSTGRES, reason="the one-statement path and bound cursors are PostgreSQL's")
def test_the_server_bound_hot_statements_are_counted_like_any_other(client):
    # cms.db.bound_cursor hands its statements to Django's own cursor wrapping: a cursor
    # that went around it would make the count above pass by not seeing them.
    warm_up(client)
    with CaptureQueriesContext(connection) as queries:
        assert client.post(URL, assemble_body(), format="json").status_code == 200
    statements = [q["sql"] for q in queries]
    assert [s.split()[0:2] for s in statements] == [["SELECT", "value"], ["SELECT", "id,"],
                                                    ["WITH", "locked"]], statements


def test_a_catalog_change_is_seen_by_the_next_warm_assembly(client, world):
    warm_up(client)
    warm_up(client)  # now from the cache
    claim = world["versions"]["claim"]
    claim.state, claim.withdrawn_at = "withdrawn", timezone.now()
    claim.save(update_fields=["state", "withdrawn_at"])
    misses = serving.CONTEXTS.misses
    response = client.post(URL, assemble_body(), format="json")
    assert response.status_code == 422
    assert codes(response) == ["withdrawn"]
    assert serving.CONTEXTS.misses == misses + 1  # the context was read again
    assert Delivery.objects.count() == 2


def test_a_revoked_token_is_refused_with_a_warm_scope_cache(world):
    channel_token, key = token()
    client = token_client(key)
    warm_up(client)
    from delivery.tokens import revoke_token

    revoke_token(channel_token)
    assert client.post(URL, assemble_body(), format="json").status_code == 401
