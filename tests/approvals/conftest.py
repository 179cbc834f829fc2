import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Signing checks passwords on every decision; the default hasher would dominate run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's password


@pytest.fixture
def reviewers(db):
    """One active reviewer per MLR role, with printed names and email addresses."""
    from approvals.roles import REQUIRED_ROLES, role_group
    from tests.factories import UserFactory

    people = {}
    for role in REQUIRED_ROLES:
        user = UserFactory(username=f"rev-{role}", first_name=role.title(), last_name="Reviewer")
        user.groups.add(role_group(role))
        people[role] = user
    return people


@pytest.fixture
def submitted(db, reviewers):
    """A version submitted for review by its author."""
    from approvals import services
    from tests.factories import VersionFactory

    version = VersionFactory()
    services.submit_for_review(version=version, actor=version.created_by)
    return version
