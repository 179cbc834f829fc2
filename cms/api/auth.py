"""Who is calling the API: a person (session) or a channel (`Authorization: Token <key>`).

A channel's `request.user` is a `ChannelClient` (not a Django user) carrying its token's
scope, so views and selectors ask one object which channels and jurisdictions the caller
may act for. The tokens themselves are stored by the `delivery` app (their scope is
content taxonomy); it registers the function that turns a raw key into a client with
`register_key_resolver` when it starts, so this floor never imports a higher one.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from django.utils.connection import ConnectionProxy
from rest_framework import authentication, exceptions, throttling


@dataclass(frozen=True)
class ChannelClient:
    """The request.user of a channel: what its token allows."""

    token_id: int
    name: str
    channels: frozenset[str]
    jurisdictions: frozenset[str]
    rate_limit: str
    # The catalog epoch the scope was read under (this request's, when resolved from a
    # cache keyed by it): the request's other caches reuse it instead of reading it again.
    epoch: int | None = None

    is_channel = True  # what content.permissions.channel_scope (restrict) recognises
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


# key -> (client, auth object); raises AuthenticationFailed for unknown or revoked keys.
KeyResolver = Callable[[str], tuple[ChannelClient, object]]
_key_resolver: KeyResolver | None = None


def register_key_resolver(resolver: KeyResolver) -> None:
    """Install the lookup of raw token keys (the app that stores tokens calls this in its
    AppConfig.ready). Registering again replaces it: there is one token store."""
    global _key_resolver
    _key_resolver = resolver


def resolve_key(key: str) -> tuple[ChannelClient, object]:
    if _key_resolver is None:
        raise ImproperlyConfigured("No channel-token store registered: the app that stores "
                                   "tokens must call cms.api.auth.register_key_resolver.")
    return _key_resolver(key)


class ChannelTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Token <key>`; no CSRF (no cookies involved)."""

    keyword = "Token"

    def authenticate(self, request):
        try:
            header = authentication.get_authorization_header(request).split()
        except UnicodeEncodeError:  # not Latin-1: no key of ours looks like that
            raise exceptions.AuthenticationFailed("Unknown token.", code="invalid_token")
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
        return resolve_key(key)

    def authenticate_header(self, request):
        return self.keyword


def channel_client(request) -> ChannelClient | None:
    user = getattr(request, "user", None)
    return user if isinstance(user, ChannelClient) else None


class ChannelTokenRateThrottle(throttling.SimpleRateThrottle):
    """Per-token request rate: the token's own `rate_limit`, else REST_FRAMEWORK's
    DEFAULT_THROTTLE_RATES["channel_token"]. People (sessions) are not throttled here.

    Counted in the shared cache (settings.CACHES: Redis in the services profile) with one
    atomic increment per request in fixed windows of the rate's period, so every web
    process counts against the same limit; DRF's own history list is read and written
    back, which loses counts when processes race."""

    scope = "channel_token"

    def __init__(self):
        # The rate depends on the token, so it is resolved per request in allow_request.
        self.seconds_left = 0.0

    def allow_request(self, request, view):
        client = channel_client(request)
        if client is None:
            return True
        self.rate = client.rate_limit or self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        now = time.time()
        window = int(now // self.duration)
        key = f"{self.get_cache_key(request, view)}:{self.duration}:{window}"
        count = count_in_window(self.cache, key, self.duration + 1)
        self.seconds_left = (window + 1) * self.duration - now
        return count <= self.num_requests

    def wait(self):
        return max(self.seconds_left, 1.0)

    def get_rate(self):
        # Read the setting now, not at import, so operators and tests can change it.
        from rest_framework.settings import api_settings

        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        client = channel_client(request)
        # With the key's hash: token ids start again in a new database (a test run), the
        # shared cache does not.
        key_hash = getattr(request.auth, "key_hash", "") or ""
        return self.cache_format % {"scope": self.scope,
                                    "ident": f"{client.token_id}-{key_hash[:16]}"}

    def parse_rate(self, rate):
        num, period = rate.split("/")
        return int(num), {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]


# One Redis client per process and cache (Django's RedisCache builds a new client, with its
# table of ~170 response callbacks, for every command).
_REDIS_CLIENTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def count_in_window(cache, key: str, ttl: int) -> int:
    """Add one to the counter `key` of the shared cache and return its new value; the
    counter lives `ttl` seconds after its last increment.

    On Redis one round trip (INCR and EXPIRE pipelined; INCR is atomic across processes),
    with a client kept per process; on any other cache Django's add + incr (each atomic)."""
    if isinstance(cache, ConnectionProxy):  # django.core.cache.cache (DRF's default)
        cache = cache._connections[cache._alias]
    if isinstance(cache, RedisCache):
        backend = cache._cache
        client = _REDIS_CLIENTS.get(backend)
        if client is None:
            client = _REDIS_CLIENTS[backend] = backend.get_client(write=True)
        full_key = cache.make_and_validate_key(key)
        pipe = client.pipeline(transaction=False)
        pipe.incr(full_key)
        pipe.expire(full_key, ttl)
        count, _ = pipe.execute()
        return int(count)
    cache.add(key, 0, ttl)
    try:
        return cache.incr(key)
    except ValueError:  # the window's entry expired between add and incr
        cache.set(key, 1, ttl)
        return 1


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
