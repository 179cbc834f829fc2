"""The content demo: taxonomy, users, the two invented brands, their references, the demo
image and the modules of demo/data, each module's first version as a draft.

Idempotent: users, references and modules are found by their natural keys, and a module
that already has a version is left alone (the approvals demo may have moved it on).
"""

from __future__ import annotations

import io

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.db import transaction

from content.assets import store_asset
from content.default_taxonomy import seed_default_taxonomy
from content.models import (
    Asset,
    Audience,
    Brand,
    Channel,
    ContentModule,
    Jurisdiction,
    Locale,
    ModuleVersion,
    Reference,
    Specialty,
    Stage,
)
from content.permissions import grant_author_brand
from content.versioning import set_tags

from .specs import (
    ALL_STAGES,
    ModuleSpec,
    author_of,
    brands,
    demo_users,
    market_locales,
    module_specs,
    references,
)

DEMO_IMAGE_TITLE = "Cardiozen mechanism diagram"


def ensure_taxonomy() -> None:
    """The default taxonomy (get_or_create, so edits survive).

    Normally already there since migrating; a database flushed since then (e.g. by a
    transactional test) has lost it, and the demo should not depend on that.
    """
    seed_default_taxonomy(apps)


def _ensure_users() -> dict[str, object]:
    User = get_user_model()
    users = {}
    for spec in demo_users():
        user, created = User.objects.get_or_create(
            username=spec.username,
            defaults=dict(first_name=spec.first_name, last_name=spec.last_name,
                          email=f"{spec.username}@example.invalid", is_staff=True,
                          is_superuser=spec.superuser),
        )
        if created or not user.check_password(spec.password):
            user.set_password(spec.password)
            user.save()
        for name in spec.groups:
            user.groups.add(Group.objects.get_or_create(name=name)[0])
        users[spec.username] = user
    return users


def _ensure_brands(users) -> dict[str, Brand]:
    found = {}
    for spec in brands():
        brand = Brand.objects.filter(slug=spec.slug).first()
        if brand is None:
            brand = Brand(slug=spec.slug, name=spec.name, product_name=spec.product_name,
                          indication=spec.indication,
                          approval_validity_days=spec.approval_validity_days)
            brand._history_user = users["admin"]
            brand.save()
        found[spec.slug] = brand
    for spec in demo_users():
        for slug in spec.brands:
            grant_author_brand(users[spec.username], found[slug])
    return found


def _ensure_references(found_brands, users) -> dict[tuple[str, str], Reference]:
    refs = {}
    for spec in references():
        brand = found_brands[spec.brand]
        ref = Reference.objects.filter(brand=brand, code=spec.code).first()
        if ref is None:
            ref = Reference(brand=brand, code=spec.code, source=spec.source,
                            citation=spec.citation, label_section=spec.label_section)
            ref._history_user = users[author_of(spec.brand)]
            ref.save()
        refs[(spec.brand, spec.code)] = ref
    return refs


def demo_image_bytes() -> bytes:
    """A 1200 × 600 PNG diagram drawn with Pillow (no binary files in the repository)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (1200, 600), (246, 248, 252))
    draw = ImageDraw.Draw(image)
    draw.ellipse((120, 120, 480, 480), fill=(200, 40, 60), outline=(120, 10, 30), width=8)
    draw.ellipse((200, 200, 400, 400), fill=(240, 120, 130))
    for i, x in enumerate((600, 760, 920)):
        draw.rounded_rectangle((x, 220, x + 130, 380), radius=20, fill=(40, 90 + 40 * i, 160))
        draw.line((x - 50, 300, x, 300), fill=(60, 60, 60), width=6)
    draw.text((600, 440), "Cardiozen: myocardial energetics (illustrative)", fill=(30, 30, 30))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _ensure_demo_asset(brand, user) -> Asset:
    asset = Asset.objects.filter(brand=brand, title=DEMO_IMAGE_TITLE).first()
    if asset is None:
        asset = store_asset(
            brand=brand, title=DEMO_IMAGE_TITLE, uploaded_by=user,
            alt_text="Diagram: a heart with three boxes showing how zenocardin improves "
                     "the energy use of the heart muscle",
            upload=ContentFile(demo_image_bytes(), name="cardiozen-moa.png"),
        )
    return asset


def _stages_for(audience: Audience, wanted) -> list[Stage]:
    stages = list(audience.stages.all())
    if wanted == ALL_STAGES:
        return stages
    by_code = {s.code: s for s in stages}
    return [by_code[code] for code in wanted]


def _create_first_version(spec: ModuleSpec, module, author, refs, asset,
                          modules: dict[str, ContentModule]) -> None:
    locale = Locale.objects.get(code=market_locales()[spec.market])
    version = ModuleVersion(
        module=module, locale=locale, subject=spec.subject, body_html=spec.body,
        token_fallbacks=dict(spec.fallbacks), created_by=author,
        asset=asset if spec.image else None,
    )
    version._history_user = author
    version.save()
    audiences = [Audience.objects.get(code=code) for code in spec.audiences]
    stages = []
    for audience in audiences:
        stages += _stages_for(audience, spec.audiences[audience.code])
    set_tags(
        version,
        audiences=audiences,
        stages=stages,
        specialties=Specialty.objects.filter(audience__code="hcp", code__in=spec.specialties),
        jurisdictions=[Jurisdiction.objects.get(code=spec.market)],
        channels=Channel.objects.filter(code__in=spec.channels),
        citations=[refs[(spec.brand, code)] for code in spec.cites],
        # Signed with the version (in its sha256): set before it goes to review.
        requires=[modules[code] for code in spec.requires],
        excludes=[modules[code] for code in spec.excludes],
    )


@transaction.atomic
def load(out) -> None:
    """Create (or complete) the demo content; safe to run any number of times."""
    ensure_taxonomy()
    users = _ensure_users()
    found_brands = _ensure_brands(users)
    refs = _ensure_references(found_brands, users)
    asset = _ensure_demo_asset(found_brands["cardiozen"], users[author_of("cardiozen")])
    modules: dict[str, ContentModule] = {}
    created = 0
    for spec in module_specs():
        author = users[author_of(spec.brand)]
        module = ContentModule.objects.filter(code=spec.code).first()
        if module is None:
            module = ContentModule(code=spec.code, brand=found_brands[spec.brand], kind=spec.kind,
                                   purpose=spec.purpose, title=spec.title, owner=author)
            module._history_user = author
            module.save()
        modules[spec.code] = module
    for spec in module_specs():  # every module exists: versions may name companions
        module = modules[spec.code]
        if not module.versions.exists():
            _create_first_version(spec, module, users[author_of(spec.brand)], refs, asset,
                                  modules)
            created += 1
    out.write(f"content: {len(modules)} demo modules ({created} new versions), "
              f"{len(refs)} references, {len(found_brands)} brands\n")
