"""Channel tokens: creation (key shown once, sha256 stored), revocation, authentication.

`Authorization: Token <key>` authenticates a channel. The request's user is a
`ChannelClient` (not a Django user) carrying the token's scope, so views and selectors ask
one object which channels and jurisdictions the caller may act for.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from rest_framework import authentication, exceptions, throttling

from content.models import Channel, Jurisdiction

from .models import ChannelToken

KEY_PREFIX = "tsr_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _audit(event: str, *, actor, token: ChannelToken, data: dict) -> None:
    """Token lifecycle goes to the approvals audit trail (hash-chained) when it exists."""
    try:
        from approvals.audit import record
    except ImportError:  # the audit trail is built in parallel; nothing to chain into yet
        return
    record(event, actor=actor, target=token, data=data)


@transaction.atomic
def create_token(*, name: str, channels: Iterable[str], jurisdictions: Iterable[str],
                 actor=None, rate_limit: str = "") -> tuple[ChannelToken, str]:
    """Create a token for `channels` × `jurisdictions`; returns (token, key) — the only
    time the key exists outside the caller. Unknown codes raise ValidationError naming them.
    """
    name = (name or "").strip()
    channel_codes = sorted({c.strip().lower() for c in channels if c and c.strip()})
    jurisdiction_codes = sorted({j.strip().upper() for j in jurisdictions if j and j.strip()})
    errors: dict[str, list[str]] = {}
    if not name:
        errors["name"] = ["Give the token a name (who uses it)."]
    found_channels = list(Channel.objects.filter(code__in=channel_codes))
    found_jurisdictions = list(Jurisdiction.objects.filter(code__in=jurisdiction_codes))
    if not channel_codes:
        errors["channel"] = ["Give at least one channel."]
    elif missing := sorted(set(channel_codes) - {c.code for c in found_channels}):
        known = ", ".join(Channel.objects.values_list("code", flat=True))
        errors["channel"] = [f"Unknown channel(s): {', '.join(missing)} (known: {known})."]
    if not jurisdiction_codes:
        errors["jurisdiction"] = ["Give at least one jurisdiction."]
    elif missing := sorted(set(jurisdiction_codes) - {j.code for j in found_jurisdictions}):
        known = ", ".join(Jurisdiction.objects.values_list("code", flat=True))
        errors["jurisdiction"] = [f"Unknown jurisdiction(s): {', '.join(missing)} (known: {known})."]
    if rate_limit and not valid_rate(rate_limit):
        errors["rate_limit"] = ["Write the rate as <number>/<s|min|hour|day>, e.g. 600/min."]
    if errors:
        raise ValidationError(errors)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ChannelToken.objects.create(
        name=name, key_prefix=key[:8], key_hash=hash_key(key), created_by=actor,
        rate_limit=rate_limit,
    )
    token.channels.set(found_channels)
    token.jurisdictions.set(found_jurisdictions)
    _audit("channel_token_created", actor=actor, token=token,
           data={"name": name, "channels": channel_codes, "jurisdictions": jurisdiction_codes})
    return token, key


@transaction.atomic
def revoke_token(token: ChannelToken, *, actor=None) -> bool:
    """Revoke at once (the next request with it gets 401). False if it already was."""
    locked = ChannelToken.objects.select_for_update().get(pk=token.pk)
    if locked.revoked_at is not None:
        return False
    locked.revoked_at = timezone.now()
    locked.revoked_by = actor
    locked.save(update_fields=["revoked_at", "revoked_by"])
    token.revoked_at, token.revoked_by = locked.revoked_at, actor
    _audit("channel_token_revoked", actor=actor, token=locked, data={"name": locked.name})
    return True


def valid_rate(rate: str) -> bool:
    try:
        num, period = rate.split("/")
        return int(num) > 0 and period[:1] in {"s", "m", "h", "d"}
    except (ValueError, AttributeError):
        return False


@dataclass(frozen=True)
class ChannelClient:
    """The request.user of a channel: what its token allows."""

    token_id: int
    name: str
    channels: frozenset[str]
    jurisdictions: frozenset[str]
    rate_limit: str

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None  # not a Django user: nothing may be attributed to it as one

    @property
    def owner_key(self) -> str:
        return f"token:{self.token_id}"

    def has_perm(self, perm, obj=None) -> bool:
        return False

    def __str__(self) -> str:
        return f"channel token {self.name}"


def _scope_sql() -> str:
    """One query for a token and its scope (channels and jurisdictions), on every backend:
    authentication runs on every request, so it is one round trip, not three."""
    token_table = ChannelToken._meta.db_table
    parts = []
    for kind, name in (("c", "channels"), ("j", "jurisdictions")):
        field = ChannelToken._meta.get_field(name)
        through = field.remote_field.through._meta.db_table
        target = field.related_model._meta.db_table
        parts.append(
            f"SELECT t.id, t.name, t.rate_limit, t.revoked_at, '{kind}', x.code "
            f"FROM {token_table} t "
            f"LEFT JOIN {through} s ON s.{field.m2m_column_name()} = t.id "
            f"LEFT JOIN {target} x ON x.id = s.{field.m2m_reverse_name()} "
            f"WHERE t.key_hash = %s")
    return " UNION ALL ".join(parts)


def client_for_key(key: str) -> tuple[ChannelClient, ChannelToken]:
    """Resolve a raw key; raises AuthenticationFailed (401) for unknown or revoked keys."""
    digest = hash_key(key)
    with connection.cursor() as cursor:
        cursor.execute(_scope_sql(), [digest, digest])
        rows = cursor.fetchall()
    if not rows:
        raise exceptions.AuthenticationFailed("Unknown token.", code="invalid_token")
    token_id, name, rate_limit, revoked_at = rows[0][:4]
    if revoked_at is not None:
        raise exceptions.AuthenticationFailed("This token has been revoked.", code="token_revoked")
    client = ChannelClient(
        token_id=token_id,
        name=name,
        channels=frozenset(code for *_, kind, code in rows if kind == "c" and code),
        jurisdictions=frozenset(code for *_, kind, code in rows if kind == "j" and code),
        rate_limit=rate_limit or "",
    )
    token = ChannelToken(pk=token_id, name=name, rate_limit=rate_limit or "", key_hash=digest)
    return client, token


class ChannelTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Token <key>`; no CSRF (no cookies involved)."""

    keyword = "Token"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Send exactly 'Authorization: Token <key>'.", code="invalid_token"
            )
        try:
            key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Unknown token.", code="invalid_token")
        return client_for_key(key)

    def authenticate_header(self, request):
        return self.keyword


def channel_client(request) -> ChannelClient | None:
    user = getattr(request, "user", None)
    return user if isinstance(user, ChannelClient) else None


class ChannelTokenRateThrottle(throttling.SimpleRateThrottle):
    """Per-token request rate: the token's own `rate_limit`, else REST_FRAMEWORK's
    DEFAULT_THROTTLE_RATES["channel_token"]. People (sessions) are not throttled here."""

    scope = "channel_token"

    def __init__(self):
        # The rate depends on the token, so it is resolved per request in allow_request.
        pass

    def allow_request(self, request, view):
        client = channel_client(request)
        if client is None:
            return True
        self.rate = client.rate_limit or self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_rate(self):
        # Read the setting now, not at import, so operators and tests can change it.
        from rest_framework.settings import api_settings

        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        client = channel_client(request)
        return self.cache_format % {"scope": self.scope, "ident": client.token_id}

    def parse_rate(self, rate):
        num, period = rate.split("/")
        return int(num), {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]


def ensure_in_scope(user, *, channel: str | None = None, jurisdiction: str | None = None) -> None:
    """403 with a reason code when a channel token acts outside its scope (people pass)."""
    if not isinstance(user, ChannelClient):
        return
    if channel is not None and channel not in user.channels:
        raise exceptions.PermissionDenied(
            f"This token may not act for channel {channel!r} (it covers "
            f"{', '.join(sorted(user.channels))}).", code="channel_out_of_scope")
    if jurisdiction is not None and jurisdiction.upper() not in user.jurisdictions:
        raise exceptions.PermissionDenied(
            f"This token may not act for jurisdiction {jurisdiction!r} (it covers "
            f"{', '.join(sorted(user.jurisdictions))}).", code="jurisdiction_out_of_scope")


def people_only(user) -> None:
    """403 for channel tokens on endpoints meant for staff (authors, reviewers)."""
    if isinstance(user, ChannelClient):
        raise exceptions.PermissionDenied("This endpoint is for signed-in people, not channel "
                                          "tokens.", code="people_only")


def owner_key(user) -> str:
    return user.owner_key if isinstance(user, ChannelClient) else f"user:{user.pk}"


@contextmanager
def history_as_system(request):
    """While writing audited (django-simple-history) rows for a channel token, present no
    Django user to the history middleware: a token is not a user, so the history records
    the change as made by the system (the token is in our own logs)."""
    django_request = getattr(request, "_request", request)
    user = getattr(django_request, "user", None)
    if not isinstance(user, ChannelClient):
        yield
        return
    django_request.user = AnonymousUser()
    try:
        yield
    finally:
        django_request.user = user
