"""verify_delivery: a delivered message is proved to be the approved content, or the first
differing module is named."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from content.assets import DELIVERED_IMAGES, store_asset
from delivery.verification import message_from_assembly
from journeys.models import Slot
from tests.api.builders import (
    RECIPIENT,
    approve,
    assemble_body,
    build_world,
    token,
    token_client,
)
from tests.factories import UserFactory, VersionFactory

pytestmark = pytest.mark.django_db

UNSUBSCRIBE = "https://prefs.example.test/u/abc"


def png(width: int, height: int, colour=(10, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def delivered(db, settings, django_capture_on_commit_callbacks):
    """An email of the API builders' world with an image module, as assembled over the
    API: (assembly response, world)."""
    from cms.celery import app

    settings.TESSERA_PUBLIC_BASE_URL = "https://tessera.example.test"
    DELIVERED_IMAGES.clear()
    world = build_world()
    app.conf.task_always_eager, eager = True, app.conf.task_always_eager
    try:
        with django_capture_on_commit_callbacks(execute=True):
            asset = store_asset(brand=world["brand"], title="MoA", alt_text="Mechanism diagram",
                                uploaded_by=UserFactory(),
                                upload=ContentFile(png(1200, 600), name="moa.png"))
    finally:
        app.conf.task_always_eager = eager
    image = approve(VersionFactory(module__code="CAR-IMG-001", module__brand=world["brand"],
                                   module__kind="image", asset=asset,
                                   body_html="<p>Illustration.</p>"))
    Slot.objects.create(step=world["step"], order=10, module=image.module)
    _, key = token()
    recipient = {**RECIPIENT, "unsubscribe_url": UNSUBSCRIBE}
    response = token_client(key).post(
        "/api/v1/journeys/hcp-new/steps/welcome/assemble/",
        assemble_body(recipient=recipient, unsubscribe_url=UNSUBSCRIBE), format="json")
    assert response.status_code == 200, response.content
    return response.json(), world


def run(tmp_path, assembly, *, eml: bytes | None = None, manifest=None):
    message = tmp_path / "message.eml"
    message.write_bytes(eml if eml is not None else bytes(
        message_from_assembly(assembly, sender="news@cardiozen.example", to="dr@example.org")))
    manifest_path = tmp_path / "manifest.json"
    manifest_path.write_text(manifest if isinstance(manifest, str)
                             else json.dumps(manifest or assembly["manifest"]))
    out = io.StringIO()
    call_command("verify_delivery", str(message), "--manifest", str(manifest_path), stdout=out)
    return out.getvalue()


def refused(tmp_path, assembly, **kwargs) -> tuple[int, str, str]:
    with pytest.raises(CommandError) as info:
        run(tmp_path, assembly, **kwargs)
    return info.value.returncode, str(info.value), ""


def test_an_untouched_message_is_verified(delivered, tmp_path):
    assembly, _ = delivered
    assert assembly["manifest"]["images"], "the world's email carries an image"
    out = run(tmp_path, assembly)
    assert "verified:" in out
    assert "image email sha256" in out and "signed by" in out


def test_changed_body_text_of_one_module_names_that_module(delivered, tmp_path):
    assembly, _ = delivered
    changed = dict(assembly, html=assembly["html"].replace(
        "Cut hospitalisations by 27%", "Cut hospitalisations by 72%"))
    code, message, _ = refused(tmp_path, changed)
    assert code == 1
    assert "module CAR-EFF-001" in message
    assert "signed: '27%" in message and "delivered: '72%" in message  # says what differs


def test_changed_text_part_names_the_module(delivered, tmp_path):
    assembly, _ = delivered
    changed = dict(assembly, text=assembly["text"].replace(
        "Important Safety Information", "Safety Information"))
    code, message, _ = refused(tmp_path, changed)
    assert code == 1 and "module CAR-ISI-US" in message


def test_changed_image_bytes_are_named(delivered, tmp_path):
    assembly, _ = delivered
    image = assembly["manifest"]["images"][0]
    email_file = image["files"][0]
    from content.models import Asset

    asset = Asset.objects.get(content_sha256=image["asset_sha256"])
    with open(asset.image.storage.path(asset.renditions["email"]), "wb") as handle:
        handle.write(png(600, 300, colour=(255, 0, 0)))
    code, message, _ = refused(tmp_path, assembly)
    assert code == 1
    assert "module CAR-IMG-001" in message and "image bytes" in message
    assert email_file["sha256"][:12] in message


def test_an_embedded_image_with_other_bytes_is_named(delivered, tmp_path):
    assembly, _ = delivered
    url = assembly["manifest"]["images"][0]["files"][0]["url"]
    message = message_from_assembly(assembly, sender="a@example.org", to="b@example.org",
                                    embedded={url: png(600, 300, colour=(0, 0, 0))})
    code, text, _ = refused(tmp_path, assembly, eml=bytes(message))
    assert code == 1 and "module CAR-IMG-001" in text and "image bytes" in text


def test_a_manifest_whose_signatures_were_altered_is_refused(delivered, tmp_path):
    assembly, _ = delivered
    manifest = json.loads(json.dumps(assembly["manifest"]))
    manifest["modules"][0]["signatures"][0]["printed_name"] = "Someone Else"
    code, message, _ = refused(tmp_path, assembly, manifest=manifest)
    assert code == 2 and "signatures" in message and "refused" in message


def test_bad_files_are_clear_errors(delivered, tmp_path):
    assembly, world = delivered
    code, message, _ = refused(tmp_path, assembly, eml=b"\x00\x01 not a message")
    assert code == 2 and ".eml" in message
    code, message, _ = refused(tmp_path, assembly, manifest="{not json")
    assert code == 2 and "not JSON" in message
    code, message, _ = refused(tmp_path, assembly, manifest=json.dumps({"hello": 1}))
    assert code == 2 and "not a Tessera assembly manifest" in message
    other = json.loads(json.dumps(assembly["manifest"]))
    other["modules"] = [m for m in other["modules"] if m["module"] == "CAR-SUBJ-001"]
    other["modules"][0]["module"] = "OTHER-001"
    code, message, _ = refused(tmp_path, assembly, manifest=other)
    assert code == 2 and "another message" in message
    missing = tmp_path / "absent.eml"
    with pytest.raises(CommandError) as info:
        call_command("verify_delivery", str(missing), "--manifest", str(tmp_path / "x.json"))
    assert info.value.returncode == 2 and "Cannot read" in str(info.value)
