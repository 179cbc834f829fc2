"""/healthz and /readyz: what a load balancer or an orchestrator asks before sending traffic."""

import pytest
from django.db.migrations.recorder import MigrationRecorder

pytestmark = pytest.mark.django_db


def test_healthz_answers_ok_without_touching_services(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_with_database_migrated_and_tasks_runnable(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "broker": "ok"},
    }


def test_readyz_is_503_while_a_migration_is_not_applied(client):
    latest = MigrationRecorder.Migration.objects.filter(app="content").order_by("-id").first()
    latest.delete()  # as if the new release's migration had not run yet

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["migrations"] == "1 pending"


def test_readyz_is_503_when_the_broker_cannot_be_reached(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

    response = client.get("/readyz")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["broker"].startswith("error: ")
    assert checks["database"] == "ok"


@pytest.mark.redis
def test_readyz_reaches_the_real_redis_broker(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False

    response = client.get("/readyz")

    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["broker"] == "ok"
