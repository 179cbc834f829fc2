"""The journey builder through the test client: every edit, validation errors, permissions,
history and the conflict when two designers save the same touchpoint."""

import pytest
from django.contrib.auth.models import Permission

from content.models import Brand, Channel, Jurisdiction
from content.models import Stage as AudienceStage
from content.permissions import grant_author_brand
from journeys.models import Slot, Stage, Step, Transition
from tests.factories import BrandFactory, UserFactory, term
from tests.journeys.conftest import make_version

pytestmark = pytest.mark.django_db

BUILD_PERMS = [f"{action}_{model}" for model in ("journey", "stage", "step", "slot", "transition")
               for action in ("add", "change", "delete", "view")]


def designer(world, username="designer"):
    user = UserFactory(username=username, is_staff=True, first_name=username.title())
    user.user_permissions.add(*Permission.objects.filter(
        content_type__app_label="journeys", codename__in=BUILD_PERMS))
    grant_author_brand(user, world["brand"])
    return user


@pytest.fixture
def client_of(client, world):
    def login(username="designer"):
        from django.test import Client

        c = Client()
        c.force_login(designer(world, username))
        return c
    return login


@pytest.fixture
def dc(client_of):
    return client_of()


MAP = "/journeys/hcp-new/map/"
BUILD = "/journeys/hcp-new/build"


def interest(world):
    stage, _ = AudienceStage.objects.get_or_create(
        audience=world["journey"].audience, code="interest", defaults={"name": "Interest"})
    return stage


def test_the_map_shows_the_builder_only_to_who_may_change_the_journey(client, dc, world):
    page = dc.get(MAP).content.decode()
    assert "Build this journey" in page and "htmx.min.js" in page and 'hx-boost="true"' in page
    viewer = UserFactory(username="viewer", is_staff=True)
    grant_author_brand(viewer, world["brand"])  # the brand, but not the admin's model perms
    client.force_login(viewer)
    page = client.get(MAP).content.decode()
    assert "Build this journey" not in page and "htmx.min.js" not in page
    assert client.post(f"{BUILD}/stages/", {"audience_stage": interest(world).pk}).status_code == 403
    other = designer(world, "other-brand")
    from content.permissions import revoke_author_brand

    revoke_author_brand(other, world["brand"])
    grant_author_brand(other, BrandFactory(name="Other", slug="other"))
    client.force_login(other)
    assert client.get(MAP).status_code == 404  # another brand's journey


def test_add_move_and_remove_stages(dc, world):
    response = dc.post(f"{BUILD}/stages/", {"audience_stage": interest(world).pk})
    assert response.status_code == 303 and response["Location"].startswith(MAP)
    stages = list(world["journey"].stages.order_by("order"))
    assert [s.audience_stage.code for s in stages] == ["awareness", "interest"]
    new = stages[1]
    assert new.history.first().history_user.username == "designer"
    assert dc.post(f"{BUILD}/stages/{new.pk}/move/", {"direction": "left"}).status_code == 303
    assert [s.audience_stage.code for s in world["journey"].stages.order_by("order")] == [
        "interest", "awareness"]
    # Not twice, and not another audience's stage.
    again = dc.post(f"{BUILD}/stages/", {"audience_stage": interest(world).pk})
    assert again.status_code == 422 and "Select a valid choice" in again.content.decode()
    # A stage with touchpoints stays.
    refused = dc.post(f"{BUILD}/stages/{world['stage'].pk}/remove/")
    assert refused.status_code == 422 and "move or remove it first" in refused.content.decode()
    assert dc.post(f"{BUILD}/stages/{new.pk}/remove/").status_code == 303
    assert not Stage.objects.filter(pk=new.pk).exists()


def test_stage_insights(dc, world):
    stage = world["stage"]
    page = dc.get(f"{BUILD}/stages/{stage.pk}/").content.decode()
    assert 'name="edit_version"' in page
    response = dc.post(f"{BUILD}/stages/{stage.pk}/", {
        "audience_stage": stage.audience_stage_id, "needs": "Evidence", "emotions": "Curious",
        "pain_points": "No time", "opportunities": "Short video", "edit_version": stage.version})
    assert response.status_code == 303
    stage.refresh_from_db()
    assert (stage.needs, stage.opportunities) == ("Evidence", "Short video")


def test_add_edit_move_and_remove_steps(dc, world):
    email = term(Channel, "email")
    response = dc.post(f"{BUILD}/steps/", {"stage": world["stage"].pk, "name": "Follow-up",
                                           "key": "follow-up", "channel": email.pk,
                                           "owner_function": "marketing"})
    assert response.status_code == 303 and response["Location"].endswith("#step-follow-up")
    step = Step.objects.get(journey=world["journey"], key="follow-up")
    assert step.order == world["step"].order + 1
    # The same key twice: the model's rule, as in the admin, on the map with the input kept.
    dup = dc.post(f"{BUILD}/steps/", {"stage": world["stage"].pk, "name": "Again",
                                      "key": "follow-up", "channel": email.pk,
                                      "owner_function": "marketing"})
    page = dup.content.decode()
    assert dup.status_code == 422 and "already exists" in page and 'value="Again"' in page
    bad = dc.post(f"{BUILD}/steps/", {"stage": world["stage"].pk, "name": "Bad key",
                                      "key": "Bad Key", "channel": email.pk,
                                      "owner_function": "marketing"})
    assert bad.status_code == 422
    # Every field of the editor.
    data = {"stage": world["stage"].pk, "key": "follow-up", "name": "Follow-up email",
            "channel": email.pk, "owner_function": "medical_affairs", "purpose": "promotional",
            "layout": "email", "timing": "two days after the webinar", "delay_days": 2,
            "decision_moment": "Try it?", "needs": "Dosing", "emotions": "Unsure",
            "pain_points": "Time", "opportunities": "Checklist", "edit_version": step.version}
    response = dc.post(f"{BUILD}/steps/follow-up/", data)
    assert response.status_code == 303
    step.refresh_from_db()
    assert (step.owner_function, step.timing, step.decision_moment, step.delay_days) == (
        "medical_affairs", "two days after the webinar", "Try it?", 2)
    assert step.history.count() == 2 and step.history.first().history_change_reason == \
        "journey builder"
    assert dc.post(f"{BUILD}/steps/follow-up/move/", {"direction": "up"}).status_code == 303
    assert list(Step.objects.filter(stage=world["stage"]).order_by("order").values_list(
        "key", flat=True)) == ["follow-up", "welcome"]
    assert dc.post(f"{BUILD}/steps/follow-up/remove/").status_code == 303
    assert not Step.objects.filter(pk=step.pk).exists()


def test_two_designers_editing_the_same_step_get_a_conflict_and_lose_nothing(client_of, world):
    camille, dana = client_of("camille"), client_of("dana")
    step = world["step"]
    base = {"stage": world["stage"].pk, "key": "welcome", "name": "Welcome email",
            "channel": step.channel_id, "owner_function": "marketing", "purpose": "promotional",
            "layout": "email", "delay_days": 0, "edit_version": step.version}
    assert camille.post(f"{BUILD}/steps/welcome/", {**base, "timing": "day 1"}).status_code == 303
    response = dana.post(f"{BUILD}/steps/welcome/", {**base, "timing": "day 3",
                                                     "needs": "Dana's careful notes"})
    page = response.content.decode()
    assert response.status_code == 409
    assert "Camille" in page and "saved this step at" in page and "Nothing of yours is lost" in page
    assert "Dana&#x27;s careful notes" in page and "day 3" in page  # her input, kept
    assert "day 1" in page  # what is saved now
    step.refresh_from_db()
    assert step.timing == "day 1" and step.needs == ""  # nothing overwritten
    # Her form now carries the current counter: saving again applies hers.
    assert f'name="edit_version" value="{step.version}"' in page
    again = dana.post(f"{BUILD}/steps/welcome/", {**base, "edit_version": step.version,
                                                  "timing": "day 3", "needs": "Dana's careful notes"})
    assert again.status_code == 303
    step.refresh_from_db()
    assert step.timing == "day 3" and step.needs == "Dana's careful notes"


def test_module_search_is_limited_to_brand_markets_channel_and_state(dc, world):
    from approvals import services

    in_review = make_version(world["brand"], "CZN-BODY-020", approved=False,
                             tags={"channels": ["email"]})
    services.submit_for_review(version=in_review, actor=in_review.created_by)
    make_version(world["brand"], "CZN-BODY-021", approved=False)  # a draft
    make_version(world["brand"], "CZN-SMS-001", tags={"channels": ["sms"]})
    other = Brand.objects.create(name="Other", slug="other-brand")
    make_version(other, "OTH-BODY-001")
    de, _ = Jurisdiction.objects.get_or_create(code="DE", defaults={"name": "Germany"})
    make_version(world["brand"], "CZN-DE-001", tags={"jurisdictions": ["DE"]})
    page = dc.get(f"{BUILD}/steps/welcome/?q=CZN").content.decode()
    assert "CZN-BODY-020" in page and "CZN-HEAD-001" in page
    for absent in ("CZN-BODY-021", "CZN-SMS-001", "OTH-BODY-001", "CZN-DE-001", "CZN-FOOT-US"):
        assert absent not in page, absent
    fragment = dc.get(f"{BUILD}/steps/welcome/modules/?q=body-020", HTTP_HX_REQUEST="true")
    assert "CZN-BODY-020" in fragment.content.decode() and b"<html" not in fragment.content
    # Bind by the search's button; binding a module outside the search is refused.
    response = dc.post(f"{BUILD}/steps/welcome/slots/", {"module": in_review.module_id})
    assert response.status_code == 303
    assert world["step"].slots.filter(module=in_review.module).exists()
    draft = ContentModuleByCode("CZN-BODY-021")
    refused = dc.post(f"{BUILD}/steps/welcome/slots/", {"module": draft.pk})
    assert refused.status_code == 422 and "Select a valid choice" in refused.content.decode()


def ContentModuleByCode(code):  # noqa: N802
    from content.models import ContentModule

    return ContentModule.objects.get(code=code)


def test_selector_slots_reorder_and_remove(dc, world):
    stage = world["audience_stage"]
    response = dc.post(f"{BUILD}/steps/welcome/slots/", {
        "new-selector_kind": "body", "new-priority": 3, "new-required": "on",
        "new-selector_stages": [stage.pk]})
    assert response.status_code == 303
    slot = world["step"].slots.get(module__isnull=True)
    assert (slot.selector_kind, slot.priority, list(slot.selector_stages.all())) == (
        "body", 3, [stage])
    edit = dc.post(f"{BUILD}/slots/{slot.pk}/", {f"slot{slot.pk}-selector_kind": "cta",
                                                 f"slot{slot.pk}-priority": 1})
    assert edit.status_code == 303
    slot.refresh_from_db()
    assert (slot.selector_kind, slot.priority, slot.required) == ("cta", 1, False)
    assert dc.post(f"{BUILD}/slots/{slot.pk}/move/", {"direction": "up"}).status_code == 303
    orders = list(world["step"].slots.order_by("order").values_list("selector_kind", flat=True))
    assert orders[-2] == "cta"
    assert dc.post(f"{BUILD}/slots/{slot.pk}/remove/").status_code == 303
    assert not Slot.objects.filter(pk=slot.pk).exists()


def test_draw_and_remove_transitions(dc, world):
    second = Step.objects.create(journey=world["journey"], stage=world["stage"], key="second",
                                 name="Second", channel=world["step"].channel, order=2)
    response = dc.post(f"{BUILD}/transitions/", {
        "from_step": world["step"].pk, "to_step": second.pk, "event_type": "ignored",
        "threshold": 2, "label": "two ignored"})
    assert response.status_code == 303
    t = Transition.objects.get(from_step=world["step"])
    assert (t.to_step, t.event_type, t.threshold) == (second, "ignored", 2)
    assert "two ignored" in dc.get(MAP).content.decode()
    # Neither a target nor a pause: the model's rule, shown on the map.
    bad = dc.post(f"{BUILD}/transitions/", {"from_step": world["step"].pk,
                                            "event_type": "opened", "threshold": 1})
    assert bad.status_code == 422 and "exactly one" in bad.content.decode()
    silent = dc.post(f"{BUILD}/transitions/", {"from_step": second.pk, "pause": "on",
                                               "event_type": "no_engagement_for", "threshold": 1,
                                               "back": "step"})
    assert silent.status_code == 422 and "how many days" in silent.content.decode()
    assert dc.post(f"{BUILD}/transitions/{t.pk}/remove/").status_code == 303
    assert not Transition.objects.filter(pk=t.pk).exists()


def test_the_map_shows_a_touchpoint_turn_ready(dc, world):
    page = dc.get(MAP).content.decode()
    assert 'data-health="ready"' in page
    draft = make_version(world["brand"], "CZN-BODY-030", approved=False)
    Slot.objects.create(step=world["step"], order=9, module=draft.module)
    page = dc.get(MAP).content.decode()
    assert 'data-health="blocked"' in page and "not_approved" in page
    assert f"/admin/content/contentmodule/{draft.module_id}/change/" in page
    assert f"/review/v/{draft.pk}/" in page
    index = dc.get("/journeys/").content.decode()
    assert "0 ready · 0 expiring · 1 blocked" in index


def test_admin_binds_slots_by_search_shows_stage_audiences_and_refuses_a_stale_save(client, world):
    admin_user = UserFactory(username="admin-designer", is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    step = world["step"]
    page = client.get(f"/admin/journeys/step/{step.pk}/change/").content.decode()
    assert "admin-autocomplete" in page and "vForeignKeyRawIdAdminField" not in page
    assert f"brand={world['brand'].pk}" in page  # the autocomplete offers the journey's brand
    stages = client.get("/admin/journeys/stage/").content.decode()
    assert "Awareness" in stages and world["journey"].audience.name in stages
    journey_page = client.get(f"/admin/journeys/journey/{world['journey'].pk}/change/")
    assert "Open the map to build" in journey_page.content.decode()
    # A save over a newer save is refused, with nothing overwritten.
    form = {"journey": world["journey"].pk, "stage": world["stage"].pk, "key": "welcome", "name": "Renamed in the admin",
            "order": 0, "channel": step.channel_id, "owner_function": "marketing",
            "purpose": "promotional", "layout": "email", "delay_days": 0,
            "edit_version": step.version - 1,
            "slots-TOTAL_FORMS": 0, "slots-INITIAL_FORMS": 0,
            "transitions_out-TOTAL_FORMS": 0, "transitions_out-INITIAL_FORMS": 0}
    stale = client.post(f"/admin/journeys/step/{step.pk}/change/", form)
    assert stale.status_code == 200 and "Someone saved this record" in stale.content.decode()
    step.refresh_from_db()
    assert step.name == "Welcome email"
    fresh = client.post(f"/admin/journeys/step/{step.pk}/change/", {**form, "edit_version": step.version})
    assert fresh.status_code == 302
    step.refresh_from_db()
    assert step.name == "Renamed in the admin" and step.history.first().history_user == admin_user


def test_each_edit_needs_its_admin_permission_and_engagement_keeps_a_step(client, world):
    from journeys.engagement import record_event

    user = designer(world, "no-delete")
    user.user_permissions.remove(Permission.objects.get(codename="delete_step"))
    client.force_login(user)
    assert client.post(f"{BUILD}/steps/welcome/remove/").status_code == 403
    assert Step.objects.filter(pk=world["step"].pk).exists()
    client.force_login(designer(world, "may-delete"))
    record_event(journey=world["journey"], step=world["step"], event_type="opened",
                 pseudonymous_id="a" * 64)
    refused = client.post(f"{BUILD}/steps/welcome/remove/")
    assert refused.status_code == 422 and "engagement recorded" in refused.content.decode()
    assert Step.objects.filter(pk=world["step"].pk).exists()


def test_the_builder_saves_a_selector_that_ranks_by_engagement(dc, world):
    page = dc.get(f"{BUILD}/steps/welcome/").content.decode()
    assert 'name="new-ranking"' in page and "next-best content" in page
    response = dc.post(f"{BUILD}/steps/welcome/slots/", {
        "new-selector_kind": "cta", "new-priority": 1, "new-required": "on",
        "new-ranking": "engagement"})
    assert response.status_code == 303
    slot = world["step"].slots.get(module__isnull=True)
    assert slot.ranking == "engagement"
    assert slot.history.first().ranking == "engagement"
    page = dc.get(f"{BUILD}/steps/welcome/").content.decode()
    assert f'name="slot{slot.pk}-ranking"' in page
    # An edit that does not post the option keeps it; one that does changes it.
    assert dc.post(f"{BUILD}/slots/{slot.pk}/", {f"slot{slot.pk}-selector_kind": "cta",
                                                 f"slot{slot.pk}-priority": 2}).status_code == 303
    slot.refresh_from_db()
    assert (slot.priority, slot.ranking) == (2, "engagement")
    assert dc.post(f"{BUILD}/slots/{slot.pk}/", {f"slot{slot.pk}-selector_kind": "cta",
                                                 f"slot{slot.pk}-priority": 2,
                                                 f"slot{slot.pk}-ranking": "default"}
                   ).status_code == 303
    slot.refresh_from_db()
    assert slot.ranking == "default"
    bad = dc.post(f"{BUILD}/slots/{slot.pk}/", {f"slot{slot.pk}-selector_kind": "cta",
                                                f"slot{slot.pk}-priority": 2,
                                                f"slot{slot.pk}-ranking": "popularity"})
    assert bad.status_code == 422 and "Select a valid choice" in bad.content.decode()


def test_the_admin_saves_the_ranking_of_a_selector_and_refuses_it_on_a_fixed_slot(client, world):
    client.force_login(UserFactory(username="admin-ranker", is_staff=True, is_superuser=True))
    slot = Slot.objects.create(step=world["step"], order=9, selector_kind="cta")
    url = f"/admin/journeys/slot/{slot.pk}/change/"
    assert 'name="ranking"' in client.get(url).content.decode()
    form = {"step": world["step"].pk, "order": 9, "selector_kind": "cta", "priority": 0,
            "required": "on", "ranking": "engagement"}
    assert client.post(url, form).status_code == 302
    slot.refresh_from_db()
    assert slot.ranking == "engagement"
    fixed = Slot.objects.get(step=world["step"], module=world["versions"]["claim"].module)
    refused = client.post(f"/admin/journeys/slot/{fixed.pk}/change/", {
        "step": world["step"].pk, "order": fixed.order, "module": fixed.module_id,
        "priority": 0, "required": "on", "ranking": "engagement"})
    assert refused.status_code == 200 and "Only a selector ranks candidates" in (
        refused.content.decode())
    fixed.refresh_from_db()
    assert fixed.ranking == "default"
    page = client.get(f"/admin/journeys/step/{world['step'].pk}/change/").content.decode()
    assert 'name="slots-0-ranking"' in page
