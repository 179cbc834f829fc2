"""Journey index, map and preview pages, through the client."""

import pytest
from django.contrib.auth.models import Group

from content.permissions import grant_author_brand
from journeys.models import Transition
from tests.factories import UserFactory
from tests.journeys.conftest import make_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, world):
    """A staff author of the world's brand (journey pages are limited by brand)."""
    user = UserFactory(username="staff-viewer", is_staff=True)
    grant_author_brand(user, world["brand"])
    client.force_login(user)
    return client


def test_pages_need_a_login(client, world):
    for url in ("/journeys/", "/journeys/hcp-new/map/", "/journeys/hcp-new/steps/welcome/preview/"):
        response = client.get(url)
        assert response.status_code == 302 and "login" in response["Location"]


def test_preview_is_for_staff_and_mlr_reviewers_only(client, world):
    author = UserFactory(username="plain-user")
    grant_author_brand(author, world["brand"])
    client.force_login(author)
    assert client.get("/journeys/hcp-new/map/").status_code == 200
    assert client.get("/journeys/hcp-new/steps/welcome/preview/").status_code == 403
    author.groups.add(Group.objects.get_or_create(name="mlr-legal")[0])
    assert client.get("/journeys/hcp-new/steps/welcome/preview/").status_code == 200


def test_index_lists_journeys_with_map_and_preview_links(staff, world):
    page = staff.get("/journeys/").content.decode()
    assert "HCP new to therapy" in page
    assert "/journeys/hcp-new/map/" in page and "/journeys/hcp-new/steps/welcome/preview/" in page


def test_map_shows_stages_touchpoints_module_states_and_transitions(staff, world, django_assert_max_num_queries):
    world["versions"]["isi"].state = "withdrawn"
    world["versions"]["isi"].save(update_fields=["state"])
    Transition.objects.create(from_step=world["step"], event_type="no_engagement_for", days=30,
                              pause=True, label="silent for 30 days")
    world["stage"].needs = "Quick <b>facts</b>"
    world["stage"].save()
    with django_assert_max_num_queries(30):  # + touchpoint health (journeys/health.py)
        response = staff.get("/journeys/hcp-new/map/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Awareness" in page and "Welcome email" in page
    assert 'class="mod status-blocked"' in page and "CZN-ISI-US v1" in page
    assert 'class="mod status-ok"' in page
    assert "silent for 30 days" in page and "<svg" in page
    assert "Quick &lt;b&gt;facts&lt;/b&gt;" in page  # insights are text, not markup
    assert "htmx.min.js" not in page  # the builder's script: only for who may change it
    assert "print.css" in page


def test_map_query_count_does_not_grow_with_steps(staff, world, django_assert_max_num_queries):
    from journeys.models import Slot, Step

    for i in range(15):
        step = Step.objects.create(journey=world["journey"], stage=world["stage"], key=f"s{i}",
                                   name=f"Step {i}", channel=world["step"].channel)
        Slot.objects.create(step=step, module=world["versions"]["claim"].module)
        Transition.objects.create(from_step=world["step"], event_type="clicked", threshold=i + 1,
                                  to_step=step)
    with django_assert_max_num_queries(30):  # + touchpoint health (journeys/health.py)
        assert staff.get("/journeys/hcp-new/map/").status_code == 200


def test_preview_shows_the_email_with_manifest(staff, world):
    page = staff.get("/journeys/hcp-new/steps/welcome/preview/").content.decode()
    # An email step shows the email (tests/journeys/test_previews.py: other channels).
    assert page.count("<iframe") == 1 and "srcdoc=" in page and "sandbox" in page
    assert "News for Dr. Morgan" in page  # the sample recipient
    assert "CZN-EFF-001" in page and "Manifest" in page


def test_preview_shows_refusal_reasons_in_words(staff, world):
    version = make_version(world["brand"], "CZN-MED-009", kind="body", purpose="medical")
    from journeys.models import Slot

    Slot.objects.create(step=world["step"], order=8, module=version.module)
    page = staff.get("/journeys/hcp-new/steps/welcome/preview/").content.decode()
    assert "cannot be assembled compliantly" in page
    assert "purpose_mismatch" in page and "medical content; this step is promotional" in page


def test_unknown_journey_or_step_is_404(staff, world):
    assert staff.get("/journeys/nope/map/").status_code == 404
    assert staff.get("/journeys/hcp-new/steps/nope/preview/").status_code == 404


def test_admin_lists_journeys_and_steps_with_history(client, world):
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    journey = world["journey"]
    assert client.get(f"/admin/journeys/journey/{journey.pk}/change/").status_code == 200
    assert client.get(f"/admin/journeys/journey/{journey.pk}/history/").status_code == 200
    page = client.get(f"/admin/journeys/step/{world['step'].pk}/change/").content.decode()
    assert "Preview email and portal" in page and "slots" in page.lower()
