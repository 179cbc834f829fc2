"""Content changed behind the application is never served (issue 10, verify on read).

An approved version's text, a companion link, a tag and an image file are changed directly
in the database / storage, bypassing the model. Then every path refuses with
`integrity_mismatch` naming the module: the API in this process, and `assemble_batch` in a
fresh process (nothing cached, a new django.setup()). Nothing tampered is served (no
delivery-log row), and one audit entry and one notification to regulatory exist.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.core.files.base import ContentFile
from django.db import connection

from approvals.models import AuditEntry
from content.assets import store_asset
from delivery.models import Delivery
from delivery.tokens import create_token
from journeys.assembly import cache
from journeys.models import Slot
from tests.content.helpers import image_bytes
from tests.factories import ModuleFactory, VersionFactory
from tests.journeys.conftest import RECIPIENT, approve
from tests.journeys.conftest import world as journeys_world  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
URL = "/api/v1/journeys/hcp-new/steps/welcome/assemble/"


@pytest.fixture
def world(journeys_world):  # noqa: F811
    """The journeys test world plus an approved image module in the welcome step."""
    brand = journeys_world["brand"]
    asset = store_asset(brand=brand, title="Diagram", alt_text="A diagram",
                        upload=ContentFile(image_bytes(), name="d.png"),
                        uploaded_by=journeys_world["author"])
    image = VersionFactory(module=ModuleFactory(code="CZN-IMG-001", brand=brand, kind="image"),
                           asset=asset, body_html="")
    approve(image)
    Slot.objects.create(step=journeys_world["step"], order=9, module=image.module)
    cache.clear()
    return {**journeys_world, "image": image, "asset": asset}


def tamper_text(world):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE content_moduleversion SET body_html = %s WHERE id = %s",
                       ["<p>Cut hospitalisations by 90%.</p>", world["versions"]["claim"].pk])
    return "CZN-EFF-001"


def tamper_companion(world):
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM content_moduleversion_requires WHERE moduleversion_id = %s",
                       [world["versions"]["claim"].pk])
    return "CZN-EFF-001"


def tamper_tag(world):
    from content.models import Jurisdiction

    de, _ = Jurisdiction.objects.get_or_create(code="DE", defaults={"name": "Germany"})
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO content_moduleversion_jurisdictions (moduleversion_id, "
                       "jurisdiction_id) VALUES (%s, %s)", [world["versions"]["headline"].pk, de.pk])
    return "CZN-HEAD-001"


def tamper_image_bytes(world):
    path = Path(world["asset"].image.path)
    path.write_bytes(image_bytes(color=(10, 200, 10)))
    return "CZN-IMG-001"


def assemble_in_a_fresh_process(world, tmp_path) -> dict:
    """`assemble_batch` in a new interpreter on this test database; returns its index and
    the number of mails it sent."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    recipients = tmp_path / "recipients.json"
    recipients.write_text(json.dumps([{**RECIPIENT, "id": "fresh-1"}]))
    db = settings.DATABASES["default"]
    if connection.vendor == "postgresql":
        url = (f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
               f"{connection.settings_dict['NAME']}")
    else:
        url = f"sqlite:///{connection.settings_dict['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "TESSERA_MEDIA_ROOT": str(settings.MEDIA_ROOT),
           "DJANGO_SETTINGS_MODULE": "tests.settings", "CELERY_TASK_ALWAYS_EAGER": "true",
           "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    out = tmp_path / "out"
    script = (
        "import django, sys; django.setup()\n"
        "from django.core import mail; from django.core.management import call_command\n"
        f"call_command('assemble_batch', journey='hcp-new', step='welcome', "
        f"recipients={str(recipients)!r}, out={str(out)!r}, no_progress=True)\n"
        "print('MAILS', len(getattr(mail, 'outbox', [])))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    mails = int(done.stdout.rsplit("MAILS", 1)[1].split()[0])
    return {"index": json.loads((out / "index.json").read_text()), "mails": mails}


@pytest.mark.parametrize("tamper", [tamper_text, tamper_companion, tamper_tag, tamper_image_bytes])
def test_content_changed_behind_the_application_is_refused_on_every_path(world, tmp_path, tamper):
    module = tamper(world)
    mail.outbox.clear()
    _, key = create_token(name="Sender", channels=["email"], jurisdictions=["US"])
    client = __import__("rest_framework.test", fromlist=["APIClient"]).APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.post(URL, {"channel": "email", "jurisdiction": "US", "locale": "en",
                                 "recipient": RECIPIENT}, format="json")
    assert response.status_code == 422, response.content
    errors = [e for e in response.json()["errors"] if e["code"] == "integrity_mismatch"]
    assert [e["module"] for e in errors] == [module]
    assert "90%" not in response.content.decode()

    fresh = assemble_in_a_fresh_process(world, tmp_path)
    [entry] = fresh["index"]["entries"]
    assert not entry["ok"]
    assert [e["module"] for e in entry["errors"] if e["code"] == "integrity_mismatch"] == [module]

    assert not Delivery.objects.exists()  # nothing tampered was served
    audits = AuditEntry.objects.filter(event="integrity_mismatch")
    assert audits.count() == 1 and audits.get().module_code == module
    alerts = [m for m in mail.outbox if "Integrity alert" in m.subject]
    assert len(alerts) == 1 and module in alerts[0].subject
    assert fresh["mails"] == 0  # the fresh process found it reported already


def test_a_fresh_process_reports_it_once_when_it_meets_it_first(world, tmp_path):
    tamper_text(world)
    first = assemble_in_a_fresh_process(world, tmp_path / "one")
    second = assemble_in_a_fresh_process(world, tmp_path / "two")
    assert (first["mails"], second["mails"]) == (1, 0)
    assert AuditEntry.objects.filter(event="integrity_mismatch").count() == 1
    assert not Delivery.objects.exists()


def test_untouched_content_is_served_and_cached_only_after_it_passed(world):
    from journeys.assembly import assemble

    result = assemble(world["step"], RECIPIENT, channel="email", jurisdiction="US", locale="en")
    assert "integrity_mismatch" not in result.error_codes
    assert len(cache.LOCKED_CONTENT) >= 5
    tamper_text(world)
    cache.clear()
    refused = assemble(world["step"], RECIPIENT, channel="email", jurisdiction="US", locale="en")
    assert "integrity_mismatch" in refused.error_codes
    claim_id = world["versions"]["claim"].pk
    assert all(key[0] != claim_id for key in cache.LOCKED_CONTENT._items)


@pytest.mark.postgres
def test_postgres_refuses_rewriting_history_but_not_content_tables(world):
    """Why verify on read is needed on PostgreSQL too: the append-only triggers protect the
    history and signature tables, not the content tables."""
    from django.db import DatabaseError, transaction

    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE approvals_signature SET sha256 = %s", ["0" * 64])
    assert tamper_text(world) == "CZN-EFF-001"  # the content table takes the UPDATE
