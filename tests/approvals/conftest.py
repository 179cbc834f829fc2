import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Signing checks passwords on every decision; the default hasher would dominate run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
