"""Sign-in throttling and lockout (django-axes, approvals/signin.py) through the real login
pages: after AXES_FAILURE_LIMIT wrong passwords the right one is refused too, the lockout is
audited once, other people are unaffected; Part 11 signing keeps its own lockout.
"""

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client
from django.urls import reverse

from approvals import services
from approvals.models import AuditEntry, Signature
from approvals.roles import role_group
from approvals.signin import SIGNIN_LOCKED_OUT
from tests.factories import UserFactory, VersionFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's password
LOGIN_PAGES = ["/admin/login/", "/review/login/"]


def sign_in(client, page, username, password):
    return client.post(page, {"username": username, "password": password})


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.fixture
def staff(db):
    return UserFactory(username="ada.admin", is_staff=True, is_superuser=True)


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_the_right_password_is_refused_after_the_failure_limit(staff, page):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = sign_in(client, page, staff.username, "wrong-password")
        assert not signed_in(client)
    response = sign_in(client, page, staff.username, PASSWORD)
    assert response.status_code == 429
    assert not signed_in(client)
    # The probe: 8 wrong passwords, then the right one.
    for _ in range(3):
        sign_in(client, page, staff.username, "wrong-password")
    assert sign_in(client, page, staff.username, PASSWORD).status_code == 429
    assert not signed_in(client)


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_fewer_failures_than_the_limit_still_sign_in_and_start_the_count_again(staff, page):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, page, staff.username, "wrong-password").status_code == 200
    assert sign_in(client, page, staff.username, PASSWORD).status_code == 302
    assert signed_in(client)
    assert not AccessAttempt.objects.filter(username=staff.username).exists()


def test_a_lockout_is_audited_once_naming_the_account_and_the_login(staff):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT + 3):
        sign_in(client, "/review/login/", staff.username, "wrong-password")
    entries = AuditEntry.objects.filter(event=SIGNIN_LOCKED_OUT)
    assert entries.count() == 1
    entry = entries.get()
    assert entry.target_type == "auth.User" and entry.target_id == str(staff.pk)
    assert entry.data["username"] == staff.username and entry.data["login"] == "review"
    assert entry.actor is None  # whoever typed the passwords is not known


def test_a_lockout_of_an_unknown_name_is_audited_without_an_account():
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "/admin/login/", "nobody-here", "wrong-password")
    entry = AuditEntry.objects.get(event=SIGNIN_LOCKED_OUT)
    assert entry.target_id == "" and entry.data["login"] == "admin"


def test_every_failure_is_logged(staff, caplog):
    caplog.set_level("WARNING", logger="tessera.signin")
    sign_in(Client(), "/review/login/", staff.username, "wrong-password")
    assert [r.message for r in caplog.records if r.name == "tessera.signin"] == ["sign-in failed"]


def test_one_locked_username_does_not_lock_anyone_else(staff):
    other = UserFactory(username="mira.keller")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "/review/login/", staff.username, "wrong-password")
    assert sign_in(client, "/review/login/", other.username, PASSWORD).status_code == 302


def test_an_administrator_lifts_a_lockout_with_axes_reset_username(staff):
    from django.core.management import call_command

    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "/admin/login/", staff.username, "wrong-password")
    call_command("axes_reset_username", staff.username)
    assert sign_in(client, "/admin/login/", staff.username, PASSWORD).status_code == 302


def test_part_11_signing_keeps_its_own_lockout_and_is_not_counted_as_sign_in(db):
    reviewer = UserFactory(username="jonas.legal")
    reviewer.groups.add(role_group("legal"))
    version = VersionFactory()
    services.submit_for_review(version=version, actor=version.created_by)
    client = Client()
    assert sign_in(client, "/review/login/", reviewer.username, PASSWORD).status_code == 302

    def decide(password):
        return client.post(reverse("approvals:decide", args=[version.pk]), {
            "role": "legal", "decision": "approve", "password": password, "comment": "",
            "username": reviewer.username, "expected_sha256": version.sha256})

    for _ in range(settings.TESSERA_SIGNING_MAX_FAILURES):
        assert decide("wrong-password").status_code == 403
    response = decide(PASSWORD)
    assert response.status_code == 403 and b"signing_locked" in response.content
    assert Signature.objects.count() == 0
    assert AuditEntry.objects.filter(event="signing_locked").count() == 1
    assert not AccessAttempt.objects.exists()  # signing failures are not sign-in failures


def test_signing_re_authentication_still_signs_after_a_real_sign_in(db):
    reviewer = UserFactory(username="priya.regulatory")
    reviewer.groups.add(role_group("regulatory"))
    version = VersionFactory()
    services.submit_for_review(version=version, actor=version.created_by)
    client = Client()
    assert sign_in(client, "/review/login/", reviewer.username, PASSWORD).status_code == 302
    response = client.post(reverse("approvals:decide", args=[version.pk]), {
        "role": "regulatory", "decision": "approve", "password": PASSWORD, "comment": "",
        "username": reviewer.username, "expected_sha256": version.sha256})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Signature.objects.filter(signer=reviewer).count() == 1
