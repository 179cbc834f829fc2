"""WSGI entry point (gunicorn cms.wsgi): channel-token API calls take the lean middleware
chain, everything else the full one (cms/handlers.py)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cms.settings")
django.setup(set_prefix=False)

from cms.handlers import Application  # noqa: E402 - after setup, as get_wsgi_application

application = Application()
