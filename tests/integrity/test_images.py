"""Images as delivered: absolute, content-addressed, the right rendition, in the manifest,
and served only with the bytes their address names."""

from __future__ import annotations

import hashlib
import io
import re

import pytest
from django.core.files.base import ContentFile
from PIL import Image

from content.assets import DELIVERED_IMAGES, make_renditions, store_asset
from content.media import IMMUTABLE
from delivery.tokens import create_token
from journeys.models import Step
from journeys.selectors import sample_recipient
from tests.api.builders import token_client
from tests.factories import BrandFactory, UserFactory

pytestmark = pytest.mark.django_db

BASE = "https://mail.example.test"
UNSUBSCRIBE = "https://prefs.example.test/u/abc"
IMG_RE = re.compile(r"<img\b[^>]*>")
ATTR_RE = re.compile(r'([a-z-]+)="([^"]*)"')


def img_tags(html: str) -> list[dict]:
    return [dict(ATTR_RE.findall(tag)) for tag in IMG_RE.findall(html)]


def fetch(client, url: str):
    assert url.startswith(BASE + "/media/a/"), url
    return client.get(url[len(BASE):])


def png(width: int, height: int, colour=(10, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def base_url(settings):
    settings.TESSERA_PUBLIC_BASE_URL = BASE
    DELIVERED_IMAGES.clear()
    yield BASE
    DELIVERED_IMAGES.clear()


@pytest.fixture
def demo(db, eager_celery, django_capture_on_commit_callbacks):
    from demo import approvals as demo_approvals
    from demo import content as demo_content
    from demo import journeys as demo_journeys

    with django_capture_on_commit_callbacks(execute=True):  # the renditions task
        demo_content.load(io.StringIO())
    demo_approvals.load(io.StringIO())
    demo_journeys.load(io.StringIO())


@pytest.fixture
def eager_celery():
    from cms.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous


def assemble_over_api(step: Step, jurisdiction: str, locale: str):
    _, key = create_token(name="images", channels=[step.channel.code],
                       jurisdictions=[jurisdiction])
    recipient = {**sample_recipient(), "unsubscribe_url": UNSUBSCRIBE}
    return token_client(key).post(
        f"/api/v1/journeys/{step.journey.slug}/steps/{step.key}/assemble/",
        {"channel": step.channel.code, "jurisdiction": jurisdiction, "locale": locale,
         "recipient": recipient, "unsubscribe_url": UNSUBSCRIBE}, format="json")


@pytest.mark.slow
def test_every_demo_email_image_is_absolute_answers_200_and_is_in_the_manifest(
        demo, base_url, client):
    seen_images = 0
    assembled = 0
    steps = Step.objects.filter(channel__code="email").select_related("journey", "channel")
    for step in steps:
        journey = step.journey
        for jurisdiction in journey.jurisdictions.values_list("code", flat=True):
            response = assemble_over_api(step, jurisdiction, journey.locale.code)
            if response.status_code != 200:
                continue  # the demo refuses some steps on purpose (expired, not approved)
            assembled += 1
            body = response.json()
            manifest = body["manifest"]
            by_url = {f["url"]: (image, f) for image in manifest["images"]
                      for f in image["files"]}
            for attrs in img_tags(body["html"]):
                seen_images += 1
                assert attrs["alt"].strip(), attrs
                assert attrs["width"] == "600" and int(attrs["height"]) > 0
                assert "srcset" not in attrs  # emails link the 600 px rendition only
                image, file = by_url[attrs["src"]]
                assert file["rendition"] == "email" and file["width"] == 600
                answer = fetch(client, attrs["src"])
                assert answer.status_code == 200
                assert answer["Cache-Control"] == IMMUTABLE
                assert hashlib.sha256(answer.content).hexdigest() == file["sha256"]
                assert attrs["src"].endswith(f"/{image['asset_sha256']}/{file['sha256']}.png")
            assert len(img_tags(body["html"])) == sum(len(i["files"]) for i in manifest["images"])
    assert assembled >= 3
    assert seen_images >= 1  # the demo's mechanism diagram goes out in an email


@pytest.fixture
def brand_asset(db, eager_celery, django_capture_on_commit_callbacks):
    brand = BrandFactory()
    user = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):  # the renditions task
        asset = store_asset(brand=brand, title="Diagram", alt_text="A diagram",
                            uploaded_by=user, upload=ContentFile(png(1500, 900), name="d.png"))
    asset.refresh_from_db()
    return asset


def _image(asset):
    from content.assets import delivered_image
    return delivered_image(asset)


def test_renditions_are_named_by_their_bytes_and_served_immutably(brand_asset, base_url,
                                                                   client):
    image = _image(brand_asset)
    assert image.complete and image.email.rendition == "email"
    assert (image.width, image.height) == (600, 360)
    assert [f.width for f in image.srcset] == [200, 600, 1200]
    for file in (image.email, *image.srcset):
        answer = fetch(client, image.url(file))
        assert answer.status_code == 200 and answer["Content-Type"] == "image/png"
        assert answer["Cache-Control"] == IMMUTABLE
        assert hashlib.sha256(answer.content).hexdigest() == file.sha256
        assert Image.open(io.BytesIO(answer.content)).size == (file.width, file.height)


def test_a_file_changed_on_disk_is_never_served_under_its_address(brand_asset, base_url,
                                                                  client):
    image = _image(brand_asset)
    url = image.url(image.email)
    storage = brand_asset.image.storage
    with open(storage.path(brand_asset.renditions["email"]), "wb") as handle:
        handle.write(png(600, 360, colour=(255, 0, 0)))
    assert fetch(client, url).status_code == 404


def test_unknown_or_malformed_addresses_are_404(brand_asset, client):
    sha = brand_asset.content_sha256
    assert client.get(f"/media/a/{sha}/{'0' * 64}.png").status_code == 404
    assert client.get(f"/media/a/{sha}/{sha}.jpg").status_code == 404  # wrong extension
    assert client.get(f"/media/a/not-a-hash/{sha}.png").status_code == 404
    assert client.get(f"/media/a/{sha}/{sha}.png").status_code == 200  # the original
    assert client.post(f"/media/a/{sha}/{sha}.png").status_code == 405


def test_before_its_renditions_exist_the_original_stands_in_at_the_email_size(
        brand_asset, base_url, client):
    brand_asset.renditions = {}
    brand_asset.save(update_fields=["renditions"])
    image = _image(brand_asset)
    assert not image.complete and image.email.rendition == "original"
    assert image.email.sha256 == brand_asset.content_sha256
    assert (image.width, image.height) == (600, 360)  # shown as the rendition will be
    assert image.srcset == ()
    assert fetch(client, image.url(image.email)).status_code == 200
    make_renditions(brand_asset, acting_user=brand_asset.uploaded_by)
    assert _image(brand_asset).email.rendition == "email"


def test_portal_images_carry_the_renditions_as_srcset(brand_asset, base_url):
    from journeys.assembly.rendering import image_html

    image = _image(brand_asset)
    portal = dict(ATTR_RE.findall(image_html(image, responsive=True)))
    email = dict(ATTR_RE.findall(image_html(image, responsive=False)))
    assert "srcset" not in email and email["src"] == image.url(image.email)
    assert portal["src"] == email["src"]
    widths = [part.rsplit(" ", 1)[1] for part in portal["srcset"].split(", ")]
    assert widths == ["200w", "600w", "1200w"]
    assert all(part.startswith(BASE + "/media/a/") for part in portal["srcset"].split(", "))
    assert portal["sizes"] == "(max-width: 600px) 100vw, 600px"
    assert email["alt"] == "A diagram" and email["width"] == "600" and email["height"] == "360"
