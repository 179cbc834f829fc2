"""Concurrency on PostgreSQL: many people (or double clicks) acting on one record at once."""

import pytest
from django.core.exceptions import ValidationError

from content.models import ModuleVersion, VersionState
from content.versioning import new_version
from tests.factories import UserFactory, VersionFactory
from tests.integration.concurrent import run_at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def approved_version():
    version = VersionFactory()
    version.state = VersionState.APPROVED
    version.save(update_fields=["state"])
    return version


def test_twenty_authors_starting_a_new_version_at_once_get_one_draft_and_clear_refusals():
    approved = approved_version()
    authors = [UserFactory() for _ in range(20)]

    outcomes = run_at_once(lambda i: new_version(approved.module, author=authors[i]))

    drafts = [o.value for o in outcomes if o.error is None]
    refusals = [o.error for o in outcomes if o.error is not None]
    assert len(drafts) == 1
    assert drafts[0].number == approved.number + 1
    assert len(refusals) == 19
    assert all(isinstance(error, ValidationError) for error in refusals), refusals
    assert all("edit it instead" in str(error) for error in refusals)
    numbers = list(ModuleVersion.objects.filter(module=approved.module)
                   .values_list("number", flat=True))
    assert sorted(numbers) == [1, 2]


def test_new_versions_started_while_others_approve_them_never_share_a_number():
    """Each thread starts a version and approves it at once, so the next call may succeed:
    whatever interleaving happens, numbers stay distinct and consecutive."""
    approved = approved_version()
    author = UserFactory()

    def start_and_approve(index):
        draft = new_version(approved.module, author=author)
        draft.state = VersionState.APPROVED
        draft.save(update_fields=["state"])
        return draft.number

    outcomes = run_at_once(start_and_approve)

    unexpected = [o.error for o in outcomes
                  if o.error is not None and not isinstance(o.error, ValidationError)]
    assert unexpected == []
    numbers = sorted(ModuleVersion.objects.filter(module=approved.module)
                     .values_list("number", flat=True))
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(numbers) == 1 + sum(1 for o in outcomes if o.error is None)
