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

# The delivery log is written in one round trip on PostgreSQL (a data-modifying WITH);
# SQLite has none, so there it takes one INSERT per table. The transaction's BEGIN and
# COMMIT are counted apart: they are round trips too, but no query.
WARM_QUERIES = 4 if connection.vendor == "postgresql" else 5
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
    assert len(queries) <= WARM_QUERIES + 2, listing  # plus one BEGIN and one COMMIT
    assert Delivery.objects.count() == 2
    latest = Delivery.objects.latest("pk")
    assert sorted(latest.deliveredversion_set.values_list("version_id", flat=True)) == sorted(
        m["version_id"] for m in latest.manifest["modules"])


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
