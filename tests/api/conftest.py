"""API test helpers: approved versions, channel tokens, clients for channels and people."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from delivery.tokens import create_token
from tests.factories import VersionFactory, record_approval_signatures, term


def approve(version, **fields):
    """Move a version to approved the way the workflow does (state fields only)."""
    version.state = "approved"
    version.approved_at = fields.pop("approved_at", timezone.now())
    for name, value in fields.items():
        setattr(version, name, value)
    version.save(update_fields=["state", "approved_at", *fields])
    return record_approval_signatures(version)


def approved_version(tags=None, **kwargs):
    return approve(VersionFactory(tags=tags or {}, **kwargs))


@pytest.fixture
def make_token(db):
    def make(channels=("email",), jurisdictions=("US",), name="Email sender", rate_limit=""):
        for code in channels:
            term_channel(code)
        for code in jurisdictions:
            term_jurisdiction(code)
        token, key = create_token(name=name, channels=channels, jurisdictions=jurisdictions,
                                  rate_limit=rate_limit)
        return token, key
    return make


def term_channel(code):
    from content.models import Channel

    return term(Channel, code)


def term_jurisdiction(code):
    from content.models import Jurisdiction

    return Jurisdiction.objects.get_or_create(code=code, defaults={"name": code})[0]


def token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def channel_client(make_token):
    _token, key = make_token()
    return token_client(key)
