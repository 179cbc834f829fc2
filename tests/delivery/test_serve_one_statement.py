"""A warm single assembly on PostgreSQL re-checks and logs in ONE statement
(`delivery.serving.log_one_if_deliverable`): the versions are locked FOR SHARE and the
delivery is inserted only if every one is deliverable by content.deliverability's rule in
its SQL form. A version that stops being deliverable behind the caches' back (an UPDATE
that does not move the catalog epoch, so the prepared context still holds it) is refused
with the same codes as before, and nothing is logged; a logged delivery is the same row as
the transactional path's."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from content.deliverability import refusals
from content.models import ModuleVersion
from delivery import serving
from delivery.models import DeliveredVersion, Delivery
from tests.api.builders import assemble_body, build_world, codes, token, token_client

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
URL = "/api/v1/journeys/hcp-new/steps/welcome/assemble/"


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def client(world):
    return token_client(token()[1])


def sql_update(pk: int, **values) -> None:
    table = connection.ops.quote_name(ModuleVersion._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {', '.join(f'{k} = %s' for k in values)} "
                       "WHERE id = %s", [*values.values(), pk])


def post(client):
    return client.post(URL, assemble_body(), format="json")


def warm_up(client, capture):
    # The first assembly records the US first uses (the transactional path); the process
    # remembers them once committed, so the next ones take the one statement.
    with capture(execute=True):
        response = post(client)
    assert response.status_code == 200, response.content
    return response


def test_the_one_statement_logs_the_same_rows_as_the_transactional_path(
        client, world, monkeypatch, django_capture_on_commit_callbacks):
    calls = []
    original = serving.log_one_if_deliverable
    monkeypatch.setattr(serving, "log_one_if_deliverable",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    first = warm_up(client, django_capture_on_commit_callbacks)
    second = post(client)
    assert first.status_code == second.status_code == 200, (first.content, second.content)
    assert len(calls) == 1
    slow, fast = Delivery.objects.order_by("pk")
    fields = [f.attname for f in Delivery._meta.concrete_fields
              if f.attname not in {"id", "served_at", "manifest"}]
    assert [getattr(fast, f) for f in fields] == [getattr(slow, f) for f in fields]
    assert {k: v for k, v in fast.manifest.items() if k != "assembled_at"} == {
        k: v for k, v in slow.manifest.items() if k != "assembled_at"}
    assert fast.served_at >= slow.served_at
    versions = lambda d: sorted(DeliveredVersion.objects.filter(delivery=d).values_list(  # noqa: E731
        "version_id", "channel", "jurisdiction"))
    assert versions(fast) == versions(slow) and len(versions(fast)) == 5  # 4 slots + footer
    assert fast.manifest == second.json()["manifest"]


@pytest.mark.parametrize("change, code", [
    ({"state": "withdrawn", "withdrawn_at": timezone.now()}, "withdrawn"),
    ({"expires_at": timezone.now() - timedelta(minutes=1)}, "expired"),
    ({"state": "expired"}, "expired"),
    ({"valid_from": timezone.now() + timedelta(days=2)}, "not_approved"),
    ({"state": "draft"}, "not_approved"),
])
def test_a_version_changed_behind_the_caches_is_refused_and_not_logged(
        client, world, change, code, monkeypatch, django_capture_on_commit_callbacks):
    warm_up(client, django_capture_on_commit_callbacks)
    assert post(client).status_code == 200  # warm: the one statement
    calls = []
    original = serving.log_one_if_deliverable
    monkeypatch.setattr(serving, "log_one_if_deliverable",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    logged = Delivery.objects.count()
    # A bare SQL UPDATE: no signal, no epoch bump, so the prepared context still offers it.
    sql_update(world["versions"]["isi"].pk, **change)
    response = post(client)
    assert response.status_code == 422, response.content
    assert calls == [1]  # refused by the one statement
    assert codes(response) == [code]
    assert Delivery.objects.count() == logged
    assert DeliveredVersion.objects.filter(delivery__pk__gt=Delivery.objects.latest("pk").pk
                                           ).count() == 0


@pytest.mark.parametrize("state", ["approved", "withdrawn", "expired", "draft", "in_review"])
@pytest.mark.parametrize("valid_from", [None, -1, 1])
@pytest.mark.parametrize("expires_at", [None, -1, 1])
def test_the_rule_in_sql_judges_as_the_rule_in_python(world, state, valid_from, expires_at):
    now = timezone.now()
    at = {None: None, -1: now - timedelta(seconds=1), 1: now + timedelta(seconds=1)}
    version = world["versions"]["isi"]
    sql_update(version.pk, state=state, valid_from=at[valid_from], expires_at=at[expires_at])
    rule, params = serving._deliverable_sql(now)
    table = connection.ops.quote_name(ModuleVersion._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT ({rule}) FROM {table} WHERE {table}.id = %s",
                       [*params, version.pk])
        [(in_sql,)] = cursor.fetchall()
    in_python = not refusals(label="v", state=state, valid_from=at[valid_from],
                             expires_at=at[expires_at], withdrawn_at=None, now=now)
    assert in_sql == in_python
