"""Fixtures for the demo tests: tasks in-process (content's fixture), fast password hashing."""

import pytest

from tests.content.conftest import eager_celery  # noqa: F401  (a fixture, used by name)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Demo users are created with real passwords; PBKDF2 would dominate these tests' time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
