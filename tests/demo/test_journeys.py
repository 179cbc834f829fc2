"""Demo journeys: built from the content demo, idempotent, assembling where content allows."""

import io

import pytest

from demo import approvals as demo_approvals
from demo import content as demo_content
from demo import journeys as demo_journeys
from journeys.assembly import assemble
from journeys.models import Journey, Slot, Stage, Step, Transition
from journeys.selectors import sample_recipient

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def _reach_target_states():
    """The modules' target states, through the real workflow with signatures."""
    demo_approvals.load(io.StringIO())


@pytest.fixture
def demo_data(db):
    demo_content.load(io.StringIO())
    _reach_target_states()
    out = io.StringIO()
    demo_journeys.load(out)
    return out.getvalue()


def test_demo_journeys_are_complete_and_idempotent(demo_data):
    assert "modules not found" not in demo_data
    counts = [Journey.objects.count(), Stage.objects.count(), Step.objects.count(),
              Slot.objects.count(), Transition.objects.count()]
    demo_journeys.load(io.StringIO())
    assert [Journey.objects.count(), Stage.objects.count(), Step.objects.count(),
            Slot.objects.count(), Transition.objects.count()] == counts
    hcp = Journey.objects.get(slug="cardiozen-hcp-new-to-therapy")
    assert hcp.stages.count() == 6
    labels = set(Transition.objects.filter(from_step__journey=hcp).values_list("label", flat=True))
    assert {"read the MoA in depth", "ignored 2 emails", "declined 2 rep visits",
            "no engagement for 30 days"} <= labels
    assert {j.slug for j in Journey.objects.all()} >= {
        "cardiozen-hcp-new-to-therapy", "cardiozen-patient", "cardiozen-pharmacist"}


def test_demo_steps_assemble_or_refuse_for_the_intended_reason(demo_data):
    def run(slug, key):
        step = Step.objects.select_related("channel").get(journey__slug=slug, key=key)
        return assemble(step, sample_recipient(), channel=step.channel.code, jurisdiction="US",
                        locale="en")

    welcome = run("cardiozen-hcp-new-to-therapy", "awareness-email")
    assert welcome.ok, welcome.errors
    assert "Morgan" in welcome.subject
    assert run("cardiozen-hcp-new-to-therapy", "portal-micro").ok  # selector picks a claim
    assert run("cardiozen-patient", "symptoms-email").ok
    assert run("cardiozen-pharmacist", "faq-email").ok
    assert run("cardiozen-hcp-new-to-therapy", "congress-booth").error_codes == ["expired"]
    assert run("cardiozen-hcp-new-to-therapy", "advocacy-invite").error_codes == ["not_approved"]


def test_demo_map_renders(demo_data, client):
    from content.models import Brand
    from content.permissions import grant_author_brand
    from tests.factories import UserFactory

    user = UserFactory(username="demo-staff", is_staff=True)
    grant_author_brand(user, Brand.objects.get(slug="cardiozen"))  # journey pages: by brand
    client.force_login(user)
    page = client.get("/journeys/cardiozen-hcp-new-to-therapy/map/").content.decode()
    for stage in ("Awareness", "Interest", "Trial", "Adoption", "Ongoing use", "Advocacy"):
        assert stage in page
    assert "declined 2 rep visits" in page
