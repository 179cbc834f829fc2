"""`orchestration.leases` builds what the due queue hands out (polled and pushed) without the
API's serializers; these hold its dicts to the shapes the serializers declare for the
schema, field by field and value by value."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import serializers

from delivery.api.serializers import AssemblyOutputSerializer
from journeys.assembly.results import AssemblyResult
from orchestration import due_queue, leases, scheduler
from orchestration.api.serializers import LeasedSerializer, TouchpointSerializer
from orchestration.models import SendWindow


def declared(serializer_class, instance) -> dict:
    """What DRF renders from the declared fields alone (bypassing any override)."""
    return dict(serializers.Serializer.to_representation(serializer_class(), instance))


def test_a_leased_item_is_the_shape_the_schema_declares(world, email_client):
    SendWindow.objects.create(market="US", time_zone="UTC", start_hour=0, end_hour=24,
                              weekdays=[0, 1, 2, 3, 4, 5, 6])
    response = email_client.post("/api/v1/enrollments/", {"journey": "hcp-new", "recipients": [
        {"id": "crm-1", "market": "US", "consent": {"email": True}}]}, format="json")
    assert response.status_code == 200, response.content
    now = timezone.now()
    scheduler.run(now=now)
    [item] = due_queue.lease(token_id=1, channel="email", markets={"US"}, limit=5,
                             now=now, lease_seconds=300)

    body = leases.leased_item(item)
    assert set(body) == set(LeasedSerializer().fields)
    assert body["touchpoint"] == declared(TouchpointSerializer, item.touchpoint)
    assert body["touchpoint"]["status"] == "leased"
    assert body["touchpoint"]["lease_expires_at"].endswith("Z")
    assert TouchpointSerializer(item.touchpoint).data == body["touchpoint"]
    assert body["ack_url"] == f"/api/v1/due/{item.touchpoint.pk}/ack/"
    assert body["rep_task"] is None and body["assembled"] is None


def test_an_assembly_at_lease_is_rendered_as_the_assemble_endpoint_renders_it():
    result = AssemblyResult(ok=True, subject="Hello", html="<p>Hi</p>", text="Hi",
                            manifest={"versions": [{"code": "CAR-001", "number": 2}]},
                            headers={"List-Unsubscribe": "<https://u.example.com/x>"})
    assert leases.assembled(result) == AssemblyOutputSerializer(result).data
    assert leases.assembled(None) is None


def test_datetimes_are_rendered_as_drf_renders_them():
    field = serializers.DateTimeField()
    moment = timezone.now().replace(microsecond=123456)
    for value in (moment, moment + timedelta(hours=5), None):
        assert leases.iso(value) == field.to_representation(value)
