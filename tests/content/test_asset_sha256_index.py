"""An image request finds its asset by the sha256 its address names
(`content.assets._stored_under`): that lookup has an index, not a scan of every asset."""

from __future__ import annotations

import pytest
from django.db import connection

from content.models import Asset


@pytest.mark.django_db
def test_assets_are_found_by_content_sha256_through_an_index():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Asset._meta.db_table)
    assert any(c["index"] and c["columns"] == ["content_sha256"] for c in constraints.values())
