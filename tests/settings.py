"""The test suite's settings: cms.settings with a test-only secret key, over plain HTTP.

Production settings refuse to load without DJANGO_SECRET_KEY, and pytest-django loads the
settings before any conftest runs, so the suite's values are given here (as environment
defaults: processes the tests start — Celery workers, gunicorn, manage.py — inherit them).
The test client and the live server speak plain HTTP, hence TESSERA_HTTPS=false; the
production defaults themselves are tested in tests/security/test_settings.py.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-" + "x" * 40)
os.environ.setdefault("TESSERA_HTTPS", "false")
# The signing tests sign with a password alone; tests of the second factor turn it on
# (tests/security/test_second_factor.py, tests/e2e/test_second_factor_browser.py).
os.environ.setdefault("TESSERA_SECOND_FACTOR_REQUIRED", "false")

from cms.settings import *  # noqa: E402,F403
