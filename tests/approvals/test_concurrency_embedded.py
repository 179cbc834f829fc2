"""The same races on the embedded profile's SQLite (no row locks there: the unique
constraints and the services' retry on a locked database keep the outcome right)."""

import pytest
from django.conf import settings as django_settings

from .test_concurrency import (  # noqa: F401  (fixture and tests re-collected here)
    setup,
    test_approve_and_request_changes_at_once_leave_one_consistent_outcome,
    test_concurrent_audit_writers_never_fork_the_chain,
    test_double_click_signs_once,
    test_last_two_reviewers_deciding_at_once_approve_exactly_once,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("sqlite" not in django_settings.DATABASES["default"]["ENGINE"],
                       reason="the PostgreSQL run is tests/approvals/test_concurrency.py"),
]
