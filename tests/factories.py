"""factory-boy factories shared by every test folder."""

import factory
from django.contrib.auth import get_user_model

from content.models import (
    Audience,
    Brand,
    Channel,
    ContentModule,
    Jurisdiction,
    Locale,
    ModuleVersion,
    Reference,
    Stage,
)

# Staff names are fixed rather than drawn by Faker: tests look for the test recipients' names
# ("Alex Morgan") in stored records to prove they are absent, and a random signer once
# called "Alexa Mercer" made such a check fail. None of these contains a recipient's name.
STAFF_FIRST_NAMES = ("Amanda", "Priya", "Jonas", "Keiko", "Rafael", "Ingrid", "Tomasz")
STAFF_LAST_NAMES = ("Gomez", "Sharp", "Okafor", "Lindqvist", "Tanaka", "Rossi", "Novak",
                    "Haddad", "Brennan", "Ferreira", "Kowalczyk")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Sequence(lambda n: STAFF_FIRST_NAMES[n % len(STAFF_FIRST_NAMES)])
    last_name = factory.Sequence(lambda n: STAFF_LAST_NAMES[n % len(STAFF_LAST_NAMES)])
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.django.Password("correct-horse-battery")


class BrandFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Brand
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Brand {n}")
    slug = factory.Sequence(lambda n: f"brand-{n}")
    product_name = factory.LazyAttribute(lambda b: f"{b.name} (testamab)")


def term(model, code):
    """A taxonomy term seeded by the data migration (or created for a test)."""
    obj, _ = model.objects.get_or_create(code=code, defaults={"name": code.title()})
    return obj


class ReferenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reference

    brand = factory.SubFactory(BrandFactory)
    code = factory.Sequence(lambda n: f"ref-{n}")
    citation = factory.Sequence(lambda n: f"Author A, et al. A trial {n}. J Test Med. 2025;1:{n}.")


class ModuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContentModule

    code = factory.Sequence(lambda n: f"TST-MOD-{n:03d}")
    brand = factory.SubFactory(BrandFactory)
    kind = "body"
    purpose = "promotional"
    title = factory.Sequence(lambda n: f"Test module {n}")
    owner = factory.SubFactory(UserFactory)


class VersionFactory(factory.django.DjangoModelFactory):
    """A draft version tagged for HCPs in the US by email, in English."""

    class Meta:
        model = ModuleVersion
        skip_postgeneration_save = True

    module = factory.SubFactory(ModuleFactory)
    locale = factory.LazyFunction(lambda: term(Locale, "en"))
    body_html = "<p>Hello {{ recipient.title }} {{ recipient.last_name }}.</p>"
    created_by = factory.LazyAttribute(lambda v: v.module.owner)

    @factory.post_generation
    def tags(self, create, extracted, **kwargs):
        if not create:
            return
        tags = extracted or {}
        audience = term(Audience, tags.get("audience", "hcp"))
        self.audiences.set([audience])
        self.jurisdictions.set(
            [Jurisdiction.objects.get_or_create(code=c, defaults={"name": c})[0]
             for c in tags.get("jurisdictions", ["US"])]
        )
        self.channels.set([term(Channel, c) for c in tags.get("channels", ["email"])])
        for stage_code in tags.get("stages", []):
            stage, _ = Stage.objects.get_or_create(audience=audience, code=stage_code,
                                                   defaults={"name": stage_code})
            self.stages.add(stage)


def record_approval_signatures(version):
    """The append-only approval records a workflow approval leaves: one approving signature
    per MLR role on the version's current sha256, in a new round. For tests that move a
    version to approved directly (state fields only): assembly delivers a locked version
    only when its content as read hashes to the sha256 its approval signatures carry."""
    from django.utils import timezone

    from approvals.models import Meaning, Signature
    from approvals.roles import REQUIRED_ROLES

    version.refresh_sha256()
    last = Signature.objects.filter(version=version).order_by("-round").first()
    round_number = (last.round if last else 0) + 1
    for role in REQUIRED_ROLES:
        signer = UserFactory(username=f"signer-{role}")
        Signature.objects.create(version=version, round=round_number, signer=signer,
                                 printed_name=signer.get_full_name(), role=role,
                                 meaning=Meaning.APPROVE, sha256=version.sha256,
                                 signed_at=timezone.now())
    return version
