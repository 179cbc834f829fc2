"""Admin JSON fields go through the API's JSON guard: hostile JSON is a form error."""

import pytest
from django.urls import reverse

from tests.content.helpers import version_form_data

DEEP = "[" * 5000 + "]" * 5000
HUGE = '{"first_name": 1e999999}'


@pytest.mark.django_db
@pytest.mark.parametrize("value", [DEEP, HUGE])
def test_admin_token_fallbacks_refuse_hostile_json(client_a, version_a, value):
    before = version_a.token_fallbacks
    url = reverse("admin:content_moduleversion_change", args=[version_a.pk])
    response = client_a.post(url, version_form_data(version_a, token_fallbacks=value))
    assert response.status_code == 200
    assert "token_fallbacks" in response.context["adminform"].form.errors
    version_a.refresh_from_db()
    assert version_a.token_fallbacks == before
