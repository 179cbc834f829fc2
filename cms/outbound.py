"""Where Tessera may send a request it was told to send (webhooks): the URL/address policy
and the one way to send under it.

A URL a channel registers is an instruction to make a request from inside our network, so
it is refused unless it is `https`, carries no credentials, and EVERY address its host
resolves to is a public unicast address — not loopback, private, link-local, multicast,
reserved, unspecified or otherwise non-global (IPv4 and IPv6, including IPv4 embedded in
IPv6: mapped, NAT64, 6to4, Teredo). Hosts written as numbers in any form inet_aton accepts
(`2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1`) are read as the address they are.

`vet_url` decides; `post` sends to one of the addresses `vet_url` vetted, never resolving
the name again (so DNS cannot answer differently between the check and the connection),
follows no redirect, reads at most `MAX_RESPONSE_BYTES` and gives up after `timeout`
seconds in total. Callers vet again before every send: a name that was public when it was
registered may point inside later (DNS rebinding).

`settings.TESSERA_WEBHOOK_ALLOW_LOOPBACK` (off unless a test turns it on) lets loopback
addresses, and plain http to them, through: the test suite's receivers listen on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

# We only need the receiver's status; a body beyond this is never read.
MAX_RESPONSE_BYTES = 64 * 1024
# The forms inet_aton reads as an IPv4 address: 1 to 4 parts, decimal, octal or hex.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$", re.IGNORECASE)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class URLRefused(ValueError):
    """A URL the policy refuses; `detail` says why in words a channel developer can act on."""

    def __init__(self, detail: str, code: str = "url_refused"):
        super().__init__(detail)
        self.detail = detail
        self.code = code


class SendFailed(OSError):
    """The request could not be completed (connection, TLS, timeout, malformed response)."""


@dataclass(frozen=True)
class Destination:
    """A vetted URL: where to connect (`addresses`) and what to ask for."""

    scheme: str
    host: str
    port: int
    target: str  # path and query, as sent in the request line
    addresses: tuple[str, ...]


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (tests replace this; nothing else resolves names)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def allow_loopback() -> bool:
    return bool(settings.TESSERA_WEBHOOK_ALLOW_LOOPBACK)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    embedded = [address.ipv4_mapped, address.sixtofour]
    if address.teredo:
        embedded.extend(address.teredo)
    if address in _NAT64:
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [a for a in embedded if a is not None]


def internal_reason(address: IPAddress) -> str | None:
    """Why `address` is not a public unicast address, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        for inner in _embedded_ipv4(address):
            reason = internal_reason(inner)
            if reason:
                return reason
    for reason in ("loopback", "unspecified", "link_local", "multicast", "private", "reserved"):
        if getattr(address, f"is_{reason}"):
            return reason.replace("_", "-")
    if not address.is_global:
        return "not public"
    return None


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            raise URLRefused(f"{host!r} is neither a host name nor an IP address.") from None
    return None


def vet_url(url: str, *, require_addresses: bool = True) -> Destination:
    """Check `url` against the policy and resolve it; raise `URLRefused` with the reason.

    `require_addresses=False` (registration) accepts a name that does not resolve yet: no
    request can go anywhere until a later `vet_url` resolves it to public addresses.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise URLRefused(f"The URL cannot be read: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in {"https", "http"}:
        raise URLRefused("Use an https URL.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise URLRefused("Credentials in the URL are not accepted; verify our signature "
                         "(X-Tessera-Signature) instead.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise URLRefused("The URL has no host.")
    port = port if port is not None else (443 if scheme == "https" else 80)
    if not 0 < port < 65536:
        raise URLRefused(f"Port {port} is not a valid port.")
    literal = _literal_address(host)
    if literal is not None:
        addresses = [literal]
    elif host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback
        addresses = [ipaddress.ip_address("127.0.0.1")]
    else:
        try:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in resolve(host, port)]
        except (OSError, UnicodeError, ValueError):
            addresses = []
        if not addresses and require_addresses:
            raise URLRefused(f"The host {host!r} does not resolve.", code="unresolvable_host")
    loopback_allowed = allow_loopback() and addresses and all(a.is_loopback for a in addresses)
    if not loopback_allowed:
        for address in addresses:
            reason = internal_reason(address)
            if reason:
                raise URLRefused(f"The host {host!r} resolves to {address}, a {reason} address; "
                                 "webhooks go to public addresses only.",
                                 code="internal_address")
        if scheme != "https":
            raise URLRefused("Use an https URL.")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(scheme=scheme, host=host, port=port, target=target,
                       addresses=tuple(str(a) for a in addresses))


# --- sending -----------------------------------------------------------------------------------

def connect(address: str, port: int, timeout: float) -> socket.socket:
    """Open the TCP connection (tests replace this to see where a send would go)."""
    return socket.create_connection((address, port), timeout=timeout)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Host header and TLS name from the URL; the TCP connection to a vetted address."""

    def __init__(self, destination: Destination, address: str, timeout: float):
        super().__init__(destination.host, destination.port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = connect(self._address, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, destination: Destination, address: str, timeout: float):
        super().__init__(destination.host, destination.port, timeout=timeout,
                         context=ssl.create_default_context())
        self._address = address

    def connect(self):
        sock = connect(self._address, self.port, self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(destination: Destination, body: bytes, headers: dict[str, str], *,
         timeout: float) -> int:
    """POST `body` to a vetted destination; return the HTTP status (a 3xx is returned, not
    followed). Raise `SendFailed` when no status could be had within `timeout` seconds."""
    if not destination.addresses:
        raise SendFailed("no vetted address to send to")
    deadline = time.monotonic() + timeout
    connection_class = (_PinnedHTTPSConnection if destination.scheme == "https"
                        else _PinnedHTTPConnection)
    last_error: Exception | None = None
    for address in destination.addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        connection = connection_class(destination, address, remaining)
        # A receiver that drips bytes keeps every single read under the socket timeout;
        # the watchdog closes the socket when the total time is spent.
        aborted = threading.Event()
        watchdog = threading.Timer(remaining, _abort, args=(connection, aborted))
        watchdog.daemon = True
        watchdog.start()
        try:
            connection.request("POST", destination.target, body=body, headers=headers)
            response = connection.getresponse()
            response.read(MAX_RESPONSE_BYTES)
            if aborted.is_set():  # cut off mid-answer: what was read proves nothing
                raise SendFailed(f"no answer within {timeout:g} s")
            return response.status
        except (OSError, http.client.HTTPException, ValueError) as exc:
            last_error = exc
            if aborted.is_set() or time.monotonic() >= deadline:
                raise SendFailed(f"no answer within {timeout:g} s") from None
        finally:
            watchdog.cancel()
            connection.close()
    raise SendFailed(f"{type(last_error).__name__}: {last_error}" if last_error
                     else f"no answer within {timeout:g} s")


def _abort(connection: http.client.HTTPConnection, aborted: threading.Event) -> None:
    aborted.set()
    sock = connection.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
