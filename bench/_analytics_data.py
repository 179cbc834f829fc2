"""The setup bench/analytics.py and bench/analytics_sections.py share: the scratch
database's Django (settings from the environment, migrated) and the bench journey (brand,
HCP audience, US, one journey stage per audience stage, one step per spec row).
The scratch database itself: `_postgres`.

Django is imported inside the functions: the benches set the environment first.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def boot(database_url: str, tmp: Path) -> None:
    """Django on `database_url` (quiet, no HTTPS, caches and media under `tmp`), migrated."""
    os.environ.update({"DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "cms.settings",
                       "DJANGO_DEBUG": "0", "TESSERA_HTTPS": "false",
                       "TESSERA_LOG_LEVEL": "WARNING", "TESSERA_CACHE_DIR": str(tmp / "cache"),
                       "TESSERA_MEDIA_ROOT": str(tmp / "media")})
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def term(model, code: str):
    return model.objects.get_or_create(code=code, defaults={"name": code.title()})[0]


def bench_journey(slug: str, name: str, spec):
    """Brand "Bench", journey `slug` for HCPs in the US (English) with a step per
    (key, audience stage code, channel) of `spec`, in order. Returns (brand, journey,
    steps by key)."""
    from content.models import Audience, Brand, Channel, Jurisdiction, Locale
    from content.models import Stage as AudienceStage
    from journeys.models import Journey, Stage, Step

    brand = Brand.objects.create(name="Bench", slug="bench", product_name="Benchamab")
    hcp = term(Audience, "hcp")
    us = Jurisdiction.objects.get_or_create(code="US", defaults={"name": "United States"})[0]
    journey = Journey.objects.create(slug=slug, name=name, brand=brand, audience=hcp,
                                     locale=term(Locale, "en"))
    journey.jurisdictions.set([us])
    stages, steps = {}, {}
    for order, (key, stage_code, channel) in enumerate(spec, start=1):
        if stage_code not in stages:
            audience_stage = AudienceStage.objects.get_or_create(
                audience=hcp, code=stage_code, defaults={"name": stage_code.title(),
                                                         "order": order})[0]
            stages[stage_code] = Stage.objects.create(journey=journey, order=order,
                                                      audience_stage=audience_stage)
        steps[key] = Step.objects.create(journey=journey, stage=stages[stage_code], key=key,
                                         name=key.title(), channel=term(Channel, channel),
                                         order=order)
    return brand, journey, steps
