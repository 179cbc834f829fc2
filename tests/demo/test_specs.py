"""The demo's data files: every name they use points at something that exists."""

import io

import pytest
from django.conf import settings
from django.core.management import get_commands

from approvals.roles import REQUIRED_ROLES
from demo import delivery as demo_delivery
from demo import specs
from demo.approvals import reviewer_usernames
from demo.loader import print_logins
from demo.specs import SelectorSlot

MODULE_CODES = {spec.code for spec in specs.module_specs()}


def test_module_codes_are_unique_and_companions_exclusions_and_citations_exist():
    assert len(MODULE_CODES) == len(specs.module_specs())
    cited = {(ref.brand, ref.code) for ref in specs.references()}
    for spec in specs.module_specs():
        assert set(spec.requires) | set(spec.excludes) <= MODULE_CODES, spec.code
        assert {(spec.brand, code) for code in spec.cites} <= cited, spec.code
        assert spec.market in specs.market_locales(), spec.code


def test_every_journey_slot_names_a_demo_module_and_transitions_name_its_steps():
    for journey in specs.journey_specs():
        keys = {step.key for step in journey.steps}
        assert len(keys) == len(journey.steps), journey.slug
        for step in journey.steps:
            assert step.stage in journey.stages, (journey.slug, step.key)
            modules = {slot for slot in step.slots if not isinstance(slot, SelectorSlot)}
            assert modules <= MODULE_CODES, (journey.slug, step.key, modules - MODULE_CODES)
        for transition in journey.transitions:
            assert transition.from_step in keys, (journey.slug, transition)
            assert transition.to_step is None or transition.to_step in keys, (journey.slug, transition)


def test_each_brand_has_one_author_and_each_mlr_role_a_reviewer():
    assert {brand.slug: specs.author_of(brand.slug) for brand in specs.brands()} == {
        "cardiozen": "author.cardiozen", "respivane": "author.respivane"}
    assert reviewer_usernames() == {role: role for role in REQUIRED_ROLES}
    with pytest.raises(ValueError, match="exactly one demo author"):
        specs.author_of("no-such-brand")


def test_logins_printed_are_the_readme_table():
    out = io.StringIO()
    print_logins(out)
    readme = (settings.BASE_DIR / "README.md").read_text(encoding="utf-8")
    for user in specs.demo_users():
        assert f"  {user.username:<18} {user.password:<20} {user.role}\n" in out.getvalue()
        assert f"| `{user.username}` | `{user.password}` |" in readme, user.username


def test_load_demo_lives_in_the_demo_app_and_delivery_prints_how_to_get_a_token():
    assert get_commands()["load_demo"] == "demo"
    out = io.StringIO()
    demo_delivery.load(out)
    assert "manage.py create_channel_token" in out.getvalue()
    assert out.getvalue().count("\n") == len(demo_delivery.HOW_TO_START_A_CHANNEL)
