"""The one deliverability rule: approved, inside its validity window, not withdrawn."""

from datetime import UTC, datetime, timedelta

import pytest

from content import deliverability as rule
from content.models import VersionState

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def codes(**kwargs):
    base = {"label": "X-1 v1", "state": VersionState.APPROVED, "valid_from": None,
            "expires_at": None, "withdrawn_at": None, "now": NOW}
    return [r.code for r in rule.refusals(**{**base, **kwargs})]


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({}, []),
    ({"valid_from": NOW - DAY, "expires_at": NOW + DAY}, []),
    ({"valid_from": NOW + DAY}, ["not_approved"]),
    ({"expires_at": NOW}, ["expired"]),  # expiry is exclusive: at the instant it is gone
    ({"expires_at": NOW - DAY}, ["expired"]),
    ({"state": VersionState.EXPIRED}, ["expired"]),
    ({"state": VersionState.WITHDRAWN, "withdrawn_at": NOW - DAY}, ["withdrawn"]),
    ({"state": VersionState.DRAFT}, ["not_approved"]),
    ({"state": VersionState.IN_REVIEW}, ["not_approved"]),
    ({"state": VersionState.CHANGES_REQUESTED}, ["not_approved"]),
])
def test_refusals(kwargs, expected):
    assert codes(**kwargs) == expected


def test_refusal_names_the_version_and_date():
    [refusal] = rule.refusals(label="X-1 v3", state=VersionState.WITHDRAWN, valid_from=None,
                              expires_at=None, withdrawn_at=NOW, now=NOW)
    assert refusal.detail == "X-1 v3 was withdrawn on 2026-06-01."


@pytest.mark.django_db
def test_queryset_filter_agrees_with_the_rule():
    """The same cases, evaluated by the database: the filter and the function agree."""
    from content.models import ModuleVersion
    from tests.content.helpers import approve
    from tests.factories import VersionFactory

    cases = [
        (VersionState.APPROVED, None, None),
        (VersionState.APPROVED, NOW + DAY, None),
        (VersionState.APPROVED, None, NOW),
        (VersionState.APPROVED, NOW - DAY, NOW + DAY),
        (VersionState.APPROVED, None, NOW - DAY),
        (VersionState.WITHDRAWN, None, None),
        (VersionState.EXPIRED, None, None),
        (VersionState.DRAFT, None, None),
    ]
    expected = set()
    for state, valid_from, expires_at in cases:
        version = VersionFactory(valid_from=valid_from)
        if state != VersionState.DRAFT:
            approve(version)  # the workflow's fields, written as the workflow does
            version.state, version.expires_at = state, expires_at
            version.save(update_fields=["state", "expires_at"])
        if rule.is_deliverable(state=state, valid_from=valid_from, expires_at=expires_at,
                               now=NOW):
            expected.add(version.pk)
    found = set(ModuleVersion.objects.filter(rule.deliverable_q(NOW)).values_list("pk", flat=True))
    assert found == expected
    assert len(expected) == 2


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({}, "ok"),
    ({"expires_at": NOW + 5 * DAY}, "expiring"),
    ({"expires_at": NOW + 40 * DAY}, "ok"),
    ({"expires_at": NOW - DAY}, "blocked"),
    ({"state": VersionState.WITHDRAWN}, "blocked"),
    ({"state": VersionState.EXPIRED}, "blocked"),
    ({"state": VersionState.IN_REVIEW}, "pending"),
    ({"valid_from": NOW + DAY}, "pending"),
])
def test_health(kwargs, expected):
    base = {"state": VersionState.APPROVED, "valid_from": None, "expires_at": None,
            "now": NOW, "notice_days": 30}
    assert rule.health(**{**base, **kwargs}) == expected


def test_health_uses_the_given_notice_period():
    args = {"state": VersionState.APPROVED, "valid_from": None, "expires_at": NOW + 10 * DAY,
            "now": NOW}
    assert rule.health(**args, notice_days=14) == "expiring"
    assert rule.health(**args, notice_days=7) == "ok"
