"""Recipient pseudonyms are an HMAC under TESSERA_PSEUDONYM_KEY (formerly ..._SALT)."""

import hashlib
import hmac
import importlib
import os
from unittest import mock

from journeys.models import pseudonymous_id


def test_the_pseudonym_is_an_hmac_under_the_configured_key(settings):
    settings.TESSERA_PSEUDONYM_KEY = "k1"
    expected = hmac.new(b"k1", b"r-42", hashlib.sha256).hexdigest()
    assert pseudonymous_id("r-42") == expected
    settings.TESSERA_PSEUDONYM_KEY = "k2"
    assert pseudonymous_id("r-42") != expected


def test_without_a_key_the_secret_key_is_used(settings):
    settings.TESSERA_PSEUDONYM_KEY = ""
    expected = hmac.new(settings.SECRET_KEY.encode(), b"r-42", hashlib.sha256).hexdigest()
    assert pseudonymous_id("r-42") == expected


def _settings_with(**environ):
    import cms.settings

    with mock.patch.dict(os.environ, environ):
        for name in ("TESSERA_PSEUDONYM_KEY", "TESSERA_PSEUDONYM_SALT"):
            if name not in environ:
                os.environ.pop(name, None)
        return importlib.reload(cms.settings)


def test_the_former_salt_variable_still_sets_the_key():
    import cms.settings

    try:
        assert _settings_with(TESSERA_PSEUDONYM_SALT="old").TESSERA_PSEUDONYM_KEY == "old"
        assert _settings_with(TESSERA_PSEUDONYM_SALT="old",
                              TESSERA_PSEUDONYM_KEY="new").TESSERA_PSEUDONYM_KEY == "new"
    finally:
        importlib.reload(cms.settings)
