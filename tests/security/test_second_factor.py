"""Second factor for people who sign (approvals/second_factor.py) through the real pages:
enrolment with a first TOTP code, verification, recovery codes that work once, and a
reviewer without a second factor who gets no signing form and a 403 on a signing POST."""

import time
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from approvals import second_factor, services
from approvals.models import AuditEntry, Signature
from approvals.roles import role_group
from tests.factories import UserFactory, VersionFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's password
PAGE = "/review/second-factor/"


@pytest.fixture(autouse=True)
def _second_factor_on(settings):
    settings.TESSERA_SECOND_FACTOR_REQUIRED = True


@pytest.fixture
def reviewer(db):
    user = UserFactory(username="rev-medical")
    user.groups.add(role_group("medical"))
    return user


@pytest.fixture
def in_review(db):
    version = VersionFactory()
    services.submit_for_review(version=version, actor=version.created_by)
    return version


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def totp_code(device, *, steps_ahead=0) -> str:
    """The code the person's app shows (`steps_ahead` 30 s steps later: django-otp accepts
    one step of drift, and refuses a code whose step was already used)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():06d}"


def enrol(client, user) -> list[str]:
    page = client.get(PAGE)
    assert page.status_code == 200 and b'id="enrol-form"' in page.content
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    response = client.post(PAGE, {"code": totp_code(device)})
    assert response.status_code == 200
    codes = response.context["recovery_codes"]
    assert len(codes) == second_factor.RECOVERY_CODE_COUNT
    return codes


def decide_post(client, version):
    return client.post(reverse("approvals:decide", args=[version.pk]), {
        "role": "medical", "decision": "approve", "password": PASSWORD,
        "username": "rev-medical", "comment": "", "expected_sha256": version.sha256})


def test_a_reviewer_without_a_second_factor_gets_no_signing_form_and_a_refused_post(
        reviewer, in_review):
    client = logged_in(reviewer)
    page = client.get(reverse("approvals:review", args=[in_review.pk]))
    body = page.content.decode()
    assert page.status_code == 200
    assert 'id="decision"' not in body and 'name="password"' not in body
    assert 'id="second-factor-link"' in body

    response = decide_post(client, in_review)
    assert response.status_code == 403
    assert response.context["error"].code == second_factor.SECOND_FACTOR_REQUIRED
    assert not Signature.objects.filter(version=in_review).exists()
    entry = AuditEntry.objects.filter(event="decision_refused").latest("pk")
    assert entry.data["code"] == second_factor.SECOND_FACTOR_REQUIRED
    assert entry.data["security_event"] is True
    assert entry.actor_id == reviewer.pk


def test_withdrawal_is_gated_too(reviewer, in_review):
    client = logged_in(reviewer)
    response = client.post(reverse("approvals:withdraw", args=[in_review.pk]),
                           {"role": "medical", "reason": "x", "password": PASSWORD,
                            "username": "rev-medical"})
    assert response.status_code == 403
    assert (AuditEntry.objects.filter(event="withdrawal_refused").latest("pk").data["code"]
            == second_factor.SECOND_FACTOR_REQUIRED)


def test_enrolment_verifies_the_session_and_the_signing_form_appears(reviewer, in_review):
    client = logged_in(reviewer)
    enrol(client, reviewer)
    assert TOTPDevice.objects.get(user=reviewer).confirmed
    assert AuditEntry.objects.filter(event="second_factor_enrolled", actor=reviewer).exists()
    page = client.get(reverse("approvals:review", args=[in_review.pk]))
    assert 'id="decision"' in page.content.decode()
    response = decide_post(client, in_review)
    assert response.status_code == 302
    assert Signature.objects.filter(version=in_review, signer=reviewer).exists()


def test_a_wrong_first_code_enrols_nothing_and_is_audited(reviewer):
    client = logged_in(reviewer)
    client.get(PAGE)
    response = client.post(PAGE, {"code": "000000"})
    assert response.status_code == 400
    assert not second_factor.is_enrolled(reviewer)
    assert AuditEntry.objects.filter(event="second_factor_failed", actor=reviewer).exists()


def test_a_new_session_verifies_with_a_code_from_the_app(reviewer, in_review):
    enrol(logged_in(reviewer), reviewer)
    client = logged_in(reviewer)  # a later sign-in: not verified yet
    assert b'id="verify-form"' in client.get(PAGE).content
    assert decide_post(client, in_review).status_code == 403

    device = TOTPDevice.objects.get(user=reviewer)
    assert client.post(PAGE, {"code": "123456"}).status_code == 400
    device.refresh_from_db()
    device.throttle_reset()  # the wrong code above throttles the next try by a second
    next_url = reverse("approvals:review", args=[in_review.pk])
    response = client.post(PAGE, {"code": totp_code(device, steps_ahead=1), "next": next_url})
    assert response.status_code == 302 and response["Location"] == next_url
    assert 'id="decision"' in client.get(next_url).content.decode()


def test_a_recovery_code_works_once(reviewer):
    codes = enrol(logged_in(reviewer), reviewer)
    first = logged_in(reviewer)
    assert first.post(PAGE, {"code": codes[0].upper()}).status_code == 302
    assert second_factor.recovery_codes_left(reviewer) == second_factor.RECOVERY_CODE_COUNT - 1
    assert AuditEntry.objects.filter(event="second_factor_recovery_code_used").count() == 1

    second = logged_in(reviewer)
    response = second.post(PAGE, {"code": codes[0]})
    assert response.status_code == 400
    assert not second_factor.session_verified(response.wsgi_request)
    assert AuditEntry.objects.filter(event="second_factor_failed", actor=reviewer).exists()


def test_new_recovery_codes_replace_the_old_ones(reviewer):
    client = logged_in(reviewer)
    old = enrol(client, reviewer)
    new = client.post(PAGE, {"action": "recovery_codes"}).context["recovery_codes"]
    assert len(new) == second_factor.RECOVERY_CODE_COUNT and not set(new) & set(old)
    assert logged_in(reviewer).post(PAGE, {"code": old[1]}).status_code == 400
    # Not from an unverified session.
    assert logged_in(reviewer).post(PAGE, {"action": "recovery_codes"}).status_code == 403


def test_the_second_factor_is_asked_again_after_the_signing_idle_timeout(reviewer, settings):
    client = logged_in(reviewer)
    enrol(client, reviewer)
    request = client.get(PAGE).wsgi_request
    assert second_factor.session_verified(request)
    later = timezone.now() + timedelta(seconds=settings.TESSERA_SIGNING_IDLE_SECONDS + 1)
    assert not second_factor.session_verified(request, now=later)


def test_who_needs_it(reviewer, settings):
    assert second_factor.required_for(reviewer)
    assert second_factor.required_for(UserFactory(username="root", is_superuser=True))
    assert not second_factor.required_for(UserFactory(username="author"))
    settings.TESSERA_SECOND_FACTOR_REQUIRED = False
    assert not second_factor.required_for(reviewer)


def test_next_never_leaves_the_site(reviewer):
    codes = enrol(logged_in(reviewer), reviewer)
    response = logged_in(reviewer).post(PAGE, {"code": codes[2],
                                               "next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == reverse("approvals:inbox")


def test_a_missing_or_overlong_code_is_a_form_error(reviewer):
    client = logged_in(reviewer)
    assert client.post(PAGE, {}).status_code == 400
    assert client.post(PAGE, {"code": "9" * 100}).status_code == 400


@pytest.mark.parametrize(("variables", "required"), [
    ({"DJANGO_SECRET_KEY": "production-like-" + "k3y" * 20}, True),  # production default
    ({"DJANGO_DEBUG": "1"}, False),  # `make run`: the demo reviewers sign with a password
    ({"DJANGO_DEBUG": "1", "TESSERA_SECOND_FACTOR_REQUIRED": "true"}, True),
])
def test_required_in_production_and_off_under_debug_unless_asked(variables, required):
    from tests.security.test_settings import run_python

    result = run_python("import cms.settings as s; print(s.TESSERA_SECOND_FACTOR_REQUIRED)",
                        **variables)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == str(required)


def test_an_administrator_can_remove_a_lost_authenticator_in_the_admin(reviewer):
    enrol(logged_in(reviewer), reviewer)
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    device = TOTPDevice.objects.get(user=reviewer)
    client = logged_in(admin)
    page = client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/")
    assert page.status_code == 200 and device.key not in page.content.decode()
    response = client.post(f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not second_factor.is_enrolled(reviewer)
