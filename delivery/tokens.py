"""Channel tokens: creation (key shown once, sha256 stored), revocation, key lookup.

`client_for_key` turns a raw key into the `cms.api.auth.ChannelClient` that becomes the
request's user; `DeliveryConfig.ready` registers it with the API's token authentication.
Resolved scopes are cached per process by (key hash, catalog epoch): revoking a token or
changing its scope moves the epoch (delivery.epoch_signals), so each request costs one
read of the epoch; unknown and revoked keys are never cached.
Token lifecycle events go to the approvals audit trail (hash-chained).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from rest_framework import exceptions

from approvals.audit import record as audit_record
from cms.api.auth import ChannelClient
from cms.lru import LRUCache
from content import catalog_epoch
from content.models import Channel, Jurisdiction

from .models import ChannelToken

KEY_PREFIX = "tsr_"
SCOPES = LRUCache(4_096, name="delivery.token_scopes")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


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
    audit_record("channel_token_created", actor=actor, target=token,
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
    audit_record("channel_token_revoked", actor=actor, target=locked, data={"name": locked.name})
    return True


def valid_rate(rate: str) -> bool:
    try:
        num, period = rate.split("/")
        return int(num) > 0 and period[:1] in {"s", "m", "h", "d"}
    except (ValueError, AttributeError):
        return False


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
    epoch = catalog_epoch.current()
    resolved = SCOPES.get((digest, epoch))
    if resolved is None:
        resolved = _read_client(digest, epoch)
        SCOPES.put((digest, epoch), resolved)
    return resolved


def _read_client(digest: str, epoch: int) -> tuple[ChannelClient, ChannelToken]:
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
        epoch=epoch,
    )
    token = ChannelToken(pk=token_id, name=name, rate_limit=rate_limit or "", key_hash=digest)
    return client, token
