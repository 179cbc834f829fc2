"""The dry run of each demo journey shows the compliance refusals the demo data implies
(expired and not-yet-approved modules), deterministically."""

from django.core.management import call_command

from journeys.models import Journey
from orchestration.simulation import Cohort, simulate
from tests.content.conftest import eager_celery  # noqa: F401  (a fixture, used by name)


def test_each_demo_journey_dry_run_shows_a_refusal(db, eager_celery, settings):  # noqa: F811
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("load_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    journeys = list(Journey.objects.all())
    assert journeys
    for journey in journeys:
        result = simulate(journey, cohort=Cohort(size=2_000), days=90, seed=1)
        codes = {key.rsplit(": ", 1)[1] for key in result.refusals}
        assert codes & {"expired", "not_approved", "withdrawn"}, (journey.slug, result.refusals)
        assert sum(result.positions.values()) == 2_000
