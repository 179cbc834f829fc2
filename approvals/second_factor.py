"""Second factor for people who sign: TOTP (an authenticator app) and one-time recovery codes.

Who needs it: MLR role holders and superusers, while `TESSERA_SECOND_FACTOR_REQUIRED` is on
(the default outside DEBUG). Until this session passed the second factor, the review page
offers them no signing form and a signing POST is refused (`second_factor_required`, 403,
audited). Part 11 signing still re-asks the password on top (approvals/signing.py).

The devices are django-otp's: one confirmed TOTP device per person (enrolment creates it
unconfirmed and confirms it with a first code) and one static device holding
`RECOVERY_CODE_COUNT` recovery codes, each accepted once (django-otp deletes a used one).
Both throttle wrong codes (django-otp's exponential delay); every failure is audited.

A verification lasts while the person keeps signing: after `TESSERA_SIGNING_IDLE_SECONDS`
without a verification or a signature the second factor is asked again, as the user id is.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping

import django_otp
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from . import audit
from .errors import SECOND_FACTOR_REQUIRED, ApprovalError
from .roles import roles_of
from .signing import SESSION_AT_KEY, SESSION_USER_KEY

RECOVERY_CODE_COUNT = 10
VERIFIED_AT_KEY = "tessera_second_factor_at"
TOTP_DEVICE_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "Recovery codes"
_TOTP_CODE = re.compile(r"^\d{6}$")


def required_for(user) -> bool:
    """True when `user` may sign only after a second factor (signers: MLR roles, superusers)."""
    if not settings.TESSERA_SECOND_FACTOR_REQUIRED:
        return False
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return bool(user.is_superuser or roles_of(user))


def is_enrolled(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def session_verified(request, *, now=None) -> bool:
    """This session passed the second factor, and not longer ago than the signing idle
    timeout (counting from the verification or the last signature, whichever is newer)."""
    user = request.user
    is_verified = getattr(user, "is_verified", None)  # installed by django-otp's middleware
    if is_verified is None or not is_verified():
        return False
    session = request.session
    stamps = [session.get(VERIFIED_AT_KEY)]
    if session.get(SESSION_USER_KEY) == user.pk:
        stamps.append(session.get(SESSION_AT_KEY))
    stamps = [float(s) for s in stamps if isinstance(s, int | float)]
    if not stamps:
        return False
    now = now or timezone.now()
    return now.timestamp() - max(stamps) <= settings.TESSERA_SIGNING_IDLE_SECONDS


def may_sign(request) -> bool:
    """The one gate of the signing screens: no second factor needed, or passed."""
    return not required_for(request.user) or session_verified(request)


def refusal() -> ApprovalError:
    return ApprovalError(SECOND_FACTOR_REQUIRED,
                                "Signing needs your second factor: open “Second factor” "
                                "(/review/second-factor/) and enter a code from your "
                                "authenticator app.")


# --- enrolment -----------------------------------------------------------------------------


def pending_device(user) -> TOTPDevice:
    """The unconfirmed TOTP device enrolment shows (created on first use, reused until
    confirmed, so reloading the page keeps the secret already scanned)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    return device


def confirm_enrolment(request, code: str) -> list[str] | None:
    """Confirm the pending device with its first code: the session is verified and the
    new recovery codes are returned (to be shown once). None when the code is wrong."""
    user = request.user
    with transaction.atomic():
        device = (TOTPDevice.objects.select_for_update()
                  .filter(user=user, confirmed=False).order_by("-pk").first())
        confirmed = device is not None and device.verify_token(_normalise(code))
        if confirmed:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            # One authenticator per person: a re-enrolment replaces the old one.
            TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
            codes = _replace_recovery_codes(user)
            audit.record("second_factor_enrolled", actor=user, target=user,
                         data={"recovery_codes": len(codes)})
    if not confirmed:
        _audit_failure(user, "enrolment")
        return None
    _mark_verified(request, device)
    return codes


def new_recovery_codes(request) -> list[str]:
    """Replace the recovery codes of a verified session's user (the old ones stop working)."""
    if not session_verified(request):
        raise refusal()
    with transaction.atomic():
        codes = _replace_recovery_codes(request.user)
        audit.record("second_factor_recovery_codes_replaced", actor=request.user,
                     target=request.user, data={"recovery_codes": len(codes)})
    return codes


def _replace_recovery_codes(user) -> list[str]:
    device, _ = StaticDevice.objects.get_or_create(
        user=user, name=RECOVERY_DEVICE_NAME, defaults={"confirmed": True})
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
    return codes


# --- verification --------------------------------------------------------------------------


def verify(request, code: str) -> bool:
    """Check a code from the authenticator app (six digits) or a recovery code (used up);
    on success the session is verified. Wrong and throttled codes are refused and audited."""
    user = request.user
    code = _normalise(code)
    device_model = TOTPDevice if _TOTP_CODE.match(code) else StaticDevice
    with transaction.atomic():
        device = (device_model.objects.select_for_update()
                  .filter(user=user, confirmed=True).order_by("pk").first())
        accepted = device is not None and bool(code) and device.verify_token(code)
        if accepted and device_model is StaticDevice:
            audit.record("second_factor_recovery_code_used", actor=user, target=user,
                         data={"recovery_codes_left": device.token_set.count()})
    if not accepted:
        _audit_failure(user, "recovery code" if device_model is StaticDevice else "authenticator")
        return False
    _mark_verified(request, device)
    return True


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def _mark_verified(request, device) -> None:
    django_otp.login(request, device)
    session: MutableMapping = request.session
    session[VERIFIED_AT_KEY] = timezone.now().timestamp()


def _audit_failure(user, what: str) -> None:
    audit.record("second_factor_failed", actor=user, target=user,
                 data={"code": SECOND_FACTOR_REQUIRED, "with": what, "security_event": True})


def _normalise(code: str) -> str:
    # Authenticator apps show "123 456"; recovery codes are lower-case base32.
    return re.sub(r"[\s-]", "", code or "").lower()[:32]
