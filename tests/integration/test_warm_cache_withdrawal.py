"""A withdrawal while 16 threads assemble through the API with warm caches (token scope,
step, prepared context): no delivery of the withdrawn version after the withdrawal
committed, and every request begun after it is refused. The caches save reads; the
locked re-check at commit is what stops the content (delivery.serving)."""

import threading
import time
from datetime import UTC, datetime

import pytest

from approvals import services
from approvals.roles import role_group
from approvals.signing import Credentials
from content.models import ModuleVersion
from delivery import serving
from delivery.models import DeliveredVersion
from tests.api.builders import assemble_body, build_world, token, token_client
from tests.factories import UserFactory
from tests.integration.concurrent import run_at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's
URL = "/api/v1/journeys/hcp-new/steps/welcome/assemble/"
ASSEMBLERS = 16
AFTER = 5  # requests each assembler makes once the withdrawal committed


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_no_delivery_after_a_withdrawal_committed_with_warm_caches():
    world = build_world()
    isi = world["versions"]["isi"]
    regulatory = UserFactory(username="warm-regulatory")
    regulatory.groups.add(role_group("regulatory"))
    _token, key = token()
    warm = token_client(key).post(URL, assemble_body(), format="json")
    assert warm.status_code == 200, warm.content
    hits_before = serving.CONTEXTS.hits
    committed = threading.Event()
    committed_at: list[float] = []
    served = threading.Semaphore(0)
    requests: list[tuple[float, int, list]] = []  # (start, status, error codes)

    def withdraw():
        for _ in range(ASSEMBLERS * 3):  # let the warm assemblies run first
            assert served.acquire(timeout=120)
        services.withdraw(version=ModuleVersion.objects.get(pk=isi.pk), actor=regulatory,
                          reason="Safety signal", role="regulatory",
                          credentials=Credentials(password=PASSWORD,
                                                  username=regulatory.username))
        committed_at.append(time.time())
        committed.set()

    def assemble(index):
        client = token_client(key)
        after = 0
        while after < AFTER:
            started = time.time()
            was_committed = committed.is_set()
            response = client.post(URL, assemble_body(), format="json")
            body = response.json()
            requests.append((started if was_committed else 0.0, response.status_code,
                             [e["code"] for e in body.get("errors", [])]))
            served.release()
            after += was_committed

    outcomes = run_at_once(lambda i: withdraw() if i == ASSEMBLERS else assemble(i),
                           threads=ASSEMBLERS + 1, timeout=240)
    assert [o.error for o in outcomes if o.error] == []
    assert serving.CONTEXTS.hits > hits_before  # the caches were warm and used
    withdrawn_at = committed_at[0]
    late = [r for r in requests if r[0]]
    assert len(late) == ASSEMBLERS * AFTER
    assert all(status == 422 and "withdrawn" in errors for _, status, errors in late)
    assert any(status == 200 for _, status, _ in requests)  # it was served before
    delivered_after = DeliveredVersion.objects.filter(
        version_id=isi.pk, delivery__served_at__gte=_aware(withdrawn_at))
    assert delivered_after.count() == 0


def _aware(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)
