"""Content rules through the model API (the shell, tasks and API obey them too)."""

import pytest
from django.core.exceptions import ValidationError

from content.models import ContentModule, ModuleVersion
from tests.content.helpers import approve
from tests.factories import BrandFactory, ModuleFactory, UserFactory, VersionFactory

pytestmark = pytest.mark.django_db


def test_saving_a_version_sanitises_and_reports_what_was_removed():
    version = VersionFactory(body_html='<p onmouseover="x()">Hi</p><iframe src="https://e.vil"></iframe>')
    assert version.body_html == "<p>Hi</p>"
    assert "onmouseover attribute on <p>" in version.sanitise_report.message()
    assert "<iframe> element" in version.sanitise_report.message()
    assert ModuleVersion.objects.get(pk=version.pk).body_text == "Hi"


def test_links_keep_safe_schemes_and_get_rel_noopener():
    version = VersionFactory(body_html='<a href="https://example.com">a</a><a href="mailto:x@y.z">m</a>')
    assert 'href="https://example.com"' in version.body_html
    assert 'rel="noopener noreferrer"' in version.body_html
    assert "mailto:x@y.z" in version.body_html


@pytest.mark.parametrize("html", ['<a href="{{ recipient.city }}">x</a>',
                                  '<a href="https://e.example/{{ recipient.last_name }}">x</a>',
                                  '<img src="{{ recipient.city }}" alt="{{ recipient.title }}">'])
def test_tokens_inside_attributes_are_refused(html):
    # A recipient value at the start of an href could otherwise become a javascript: URL.
    with pytest.raises(ValidationError, match="may only stand in text"):
        VersionFactory(body_html=html)
    assert not ModuleVersion.objects.exists()


@pytest.mark.parametrize("text", ["{{ recipient.first_name|upper }}", "{% if x %}", "{{ 7*7 }}",
                                  "{{recipient.FIRST_NAME}}", "{{ recipient.email }}"])
def test_every_non_allowlisted_token_is_refused_naming_it(text):
    with pytest.raises(ValidationError) as excinfo:
        VersionFactory(subject=text)
    assert text[:10] in str(excinfo.value)
    assert not ModuleVersion.objects.exists()


def test_fallbacks_must_be_plain_text_for_known_fields():
    with pytest.raises(ValidationError, match="plain text"):
        VersionFactory(token_fallbacks={"first_name": "<b>x</b>"})
    with pytest.raises(ValidationError, match="unknown field"):
        VersionFactory(token_fallbacks={"ssn": "000"})


def test_module_codes_are_validated_and_normalised():
    module = ContentModule(code=" czn-eff-009 ", brand=BrandFactory(), owner=UserFactory(),
                           kind="claim", title="A claim")
    module.full_clean()
    assert module.code == "CZN-EFF-009"
    module.code = "CZN EFF 9"
    with pytest.raises(ValidationError, match="capital letters"):
        module.full_clean()


def test_withdrawn_and_expired_versions_refuse_content_changes_but_accept_workflow_fields():
    version = approve(VersionFactory())
    version.state = "withdrawn"
    version.withdrawal_reason = "Label change"
    version.save(update_fields=["state", "withdrawal_reason", "updated_at"])
    stored = ModuleVersion.objects.get(pk=version.pk)
    assert (stored.state, stored.withdrawal_reason) == ("withdrawn", "Label change")
    stored.subject = "sneaky"
    with pytest.raises(ValidationError, match="withdrawn"):
        stored.save()


def test_version_history_keeps_companion_changes():
    version = VersionFactory()
    isi = ModuleFactory(brand=version.module.brand, kind="isi")
    version.requires.add(isi)
    assert ModuleVersion.history.filter(id=version.pk).count() >= 2
    assert list(version.history.first().requires.values_list("contentmodule_id", flat=True)) == [
        isi.pk]
