"""Operators set windows, caps and rules in the admin and read every decision there."""

import pytest

from tests.factories import UserFactory


@pytest.mark.parametrize("model", ["sendwindow", "frequencycap", "triggerrule",
                                   "journeyrelease", "duetouchpoint", "move", "signal",
                                   "reptask"])
def test_superusers_open_every_orchestration_list(db, client, model):
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    assert client.get(f"/admin/orchestration/{model}/").status_code == 200
    assert client.get("/admin/orchestration/sendwindow/add/").status_code == 200
