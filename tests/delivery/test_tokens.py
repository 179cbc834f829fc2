import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from approvals.models import AuditEntry
from delivery.admin import ChannelTokenAdmin
from delivery.models import ChannelToken
from delivery.tokens import hash_key, revoke_token
from tests.api.builders import codes, token, token_client
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttle_cache():
    cache.clear()
    yield
    cache.clear()


def run_command(*args):
    from io import StringIO

    out = StringIO()
    call_command("create_channel_token", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_command_prints_key_last_and_stores_only_its_hash():
    token(channels=["email", "portal"], jurisdictions=["US", "DE"])  # seeds the terms
    lines = run_command("--name", "EU sender", "--channel", "email", "--channel", "portal",
                        "--jurisdiction", "de", "--jurisdiction", "US")
    key = lines[-1]
    stored = ChannelToken.objects.get(name="EU sender")
    assert stored.key_hash == hash_key(key)
    assert key not in {stored.key_hash, stored.key_prefix}
    assert sorted(stored.channels.values_list("code", flat=True)) == ["email", "portal"]
    assert sorted(stored.jurisdictions.values_list("code", flat=True)) == ["DE", "US"]
    assert AuditEntry.objects.filter(event="channel_token_created",
                                     target_id=str(stored.pk)).exists()
    assert token_client(key).get("/api/v1/modules/").status_code == 200


@pytest.mark.parametrize("args, message", [
    (["--channel", "fax", "--jurisdiction", "US"], "Unknown channel"),
    (["--channel", "email", "--jurisdiction", "XX"], "Unknown jurisdiction"),
])
def test_command_refuses_unknown_channel_or_jurisdiction(args, message):
    token()
    with pytest.raises(CommandError, match=message):
        run_command("--name", "Bad", *args)
    assert not ChannelToken.objects.filter(name="Bad").exists()


def test_command_refuses_missing_options_with_nonzero_exit():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "manage.py", "create_channel_token", "--name", "x"],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "--channel" in result.stderr


def test_unknown_token_is_401():
    response = token_client("tsr_not-a-real-key").get("/api/v1/modules/")
    assert response.status_code == 401
    assert codes(response) == ["invalid_token"]
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("header", ["Token tsr_…", "Token \u00e9t\u00e9\u2603", "Token \U0001f600"])
def test_a_header_outside_latin_1_is_401_not_500(header):
    response = Client().get("/api/v1/modules/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401 and codes(response) == ["invalid_token"]


def test_no_credentials_is_401():
    response = Client().get("/api/v1/modules/")
    assert response.status_code == 401 and codes(response) == ["not_authenticated"]


def test_revoked_token_is_401_at_once_and_audited():
    stored, key = token()
    client = token_client(key)
    assert client.get("/api/v1/modules/").status_code == 200
    admin = UserFactory(is_superuser=True)
    assert revoke_token(stored, actor=admin)
    response = client.get("/api/v1/modules/")
    assert response.status_code == 401 and codes(response) == ["token_revoked"]
    assert AuditEntry.objects.filter(event="channel_token_revoked").count() == 1
    assert not revoke_token(stored, actor=admin)  # idempotent, audited once


def test_admin_revoke_action_revokes():
    stored, key = token()
    admin_user = UserFactory(is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(admin_user)
    response = client.post("/admin/delivery/channeltoken/", {
        "action": "revoke_selected", "_selected_action": [stored.pk]})
    assert response.status_code == 302
    stored.refresh_from_db()
    assert stored.revoked_at is not None
    assert ChannelTokenAdmin.has_delete_permission(None, None) is False


def test_admin_add_shows_the_key_once_and_stores_the_hash():
    token()  # seeds email / US
    from content.models import Channel, Jurisdiction

    admin_user = UserFactory(is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(admin_user)
    response = client.post("/admin/delivery/channeltoken/add/", {
        "name": "Portal", "channels": [Channel.objects.get(code="email").pk],
        "jurisdictions": [Jurisdiction.objects.get(code="US").pk], "rate_limit": "",
    }, follow=True)
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    key = shown[0].split("<code>")[1].split("</code>")[0]
    created = ChannelToken.objects.get(name="Portal")
    assert created.key_hash == hash_key(key)
    assert token_client(key).get("/api/v1/modules/").status_code == 200


def test_rate_limit_per_token_gives_429_with_retry_after():
    _, limited = token(rate_limit="2/min", name="Limited")
    _, other = token(name="Other")
    client = token_client(limited)
    assert client.get("/api/v1/modules/").status_code == 200
    assert client.get("/api/v1/modules/").status_code == 200
    response = client.get("/api/v1/modules/")
    assert response.status_code == 429
    assert codes(response) == ["throttled"]
    assert int(response["Retry-After"]) >= 1
    # Keyed on the token: another token is unaffected.
    assert token_client(other).get("/api/v1/modules/").status_code == 200


def test_default_token_rate_is_configurable(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"channel_token": "1/min"}}
    _, key = token()
    client = token_client(key)
    assert client.get("/api/v1/modules/").status_code == 200
    assert client.get("/api/v1/modules/").status_code == 429


def test_unknown_api_url_is_json_404():
    response = Client().get("/api/v1/does-not-exist/")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"


def test_admin_refuses_a_malformed_rate_limit_with_a_form_error():
    token()
    from content.models import Channel, Jurisdiction

    admin_user = UserFactory(is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(admin_user)
    response = client.post("/admin/delivery/channeltoken/add/", {
        "name": "Fast", "channels": [Channel.objects.get(code="email").pk],
        "jurisdictions": [Jurisdiction.objects.get(code="US").pk], "rate_limit": "lots",
    })
    assert response.status_code == 200
    assert "Write the rate as" in response.content.decode()
    assert not ChannelToken.objects.filter(name="Fast").exists()


def test_api_authentication_looks_keys_up_through_the_resolver_delivery_registers(monkeypatch):
    """cms.api.auth (the floor below) knows no token model: delivery plugs its lookup in at
    startup, and a missing store is a configuration error, not an anonymous caller."""
    from django.core.exceptions import ImproperlyConfigured

    from cms.api import auth
    from delivery.tokens import client_for_key

    assert auth._key_resolver is client_for_key
    stored, key = token(channels=["email"], jurisdictions=["US"])
    client, _ = auth.resolve_key(key)
    assert isinstance(client, auth.ChannelClient) and client.token_id == stored.pk
    assert client.channels == {"email"} and client.jurisdictions == {"US"}
    monkeypatch.setattr(auth, "_key_resolver", None)
    with pytest.raises(ImproperlyConfigured):
        auth.resolve_key(key)


def test_token_creation_is_audited():
    stored, _ = token(channels=["email"], jurisdictions=["US"])
    entry = AuditEntry.objects.filter(event="channel_token_created").latest("pk")
    assert entry.data["name"] == stored.name and entry.data["channels"] == ["email"]
