"""Suite-wide fixtures and the service markers.

Tests marked `postgres`, `redis` or `worker` need the services profile; they are skipped,
with the reason, when the environment does not point at those services.
"""

import os
import shutil

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings

# Real services: per-session PostgreSQL test database, the Celery worker fixture.
pytest_plugins = ["tests.services"]


def pytest_collection_modifyitems(config, items):
    engine = settings.DATABASES["default"]["ENGINE"]
    broker = os.environ.get("CELERY_BROKER_URL", "")
    reasons = {
        "postgres": None if "postgresql" in engine else
        "needs PostgreSQL: set DATABASE_URL=postgres://... (make test-services)",
        "redis": None if broker.startswith("redis") else
        "needs Redis: set CELERY_BROKER_URL=redis://... (make test-services)",
        "worker": None if broker.startswith(("redis", "amqp")) else
        "needs a broker for a real Celery worker: set CELERY_BROKER_URL (make test-services)",
        "browser": None if shutil.which("chromium") else
        "needs Debian's chromium at /usr/bin/chromium (apt-get install chromium; .ci/run does)",
    }
    for item in items:
        for marker, reason in reasons.items():
            if reason and item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True, scope="session")
def _file_cache_of_this_run(tmp_path_factory):
    """The embedded profile's file cache in a folder of this run, not var/cache: a fresh
    test database repeats journey ids and rollup watermarks, so what an earlier run (or
    `make run`) left there would be served as this run's answers. Processes the tests start
    get the same folder."""
    default = settings.CACHES["default"]
    if not default["BACKEND"].endswith("FileBasedCache"):
        yield None
        return
    folder = str(tmp_path_factory.mktemp("cache"))
    before = os.environ.get("TESSERA_CACHE_DIR")
    os.environ["TESSERA_CACHE_DIR"] = folder
    try:
        with override_settings(CACHES={"default": {**default, "LOCATION": folder}}):
            yield folder
    finally:
        if before is None:
            os.environ.pop("TESSERA_CACHE_DIR", None)
        else:
            os.environ["TESSERA_CACHE_DIR"] = before


@pytest.fixture(autouse=True)
def _empty_file_cache(_file_cache_of_this_run):
    # Within a run too: tests repeat journey ids and watermarks (rolled-back databases).
    if _file_cache_of_this_run:
        cache.clear()


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Signing re-checks passwords on every decision; the production hasher's deliberate
    # slowness would dominate the suite. Real PBKDF2 hashes still verify (second entry).
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
