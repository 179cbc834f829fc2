"""The unsubscribe link every email carries: what a usable one is, and its mail headers.

The link is personal (it identifies the reader to the sender's preference centre), so it
is recipient data: given per recipient (`unsubscribe_url`), used to render the footer and
the headers, then forgotten like every other recipient value. Only the recipient hash of
the manifest covers it.

One-click unsubscribe (RFC 8058) needs both `List-Unsubscribe` with an https URI and
`List-Unsubscribe-Post: List-Unsubscribe=One-Click`; mailbox providers require them of
bulk senders.
"""

from __future__ import annotations

from urllib.parse import urlsplit

FIELD = "unsubscribe_url"
MAX_LENGTH = 2000
# Characters that would end the URL in `<...>` of the header, break the header line, or
# let an attribute escape; a well-formed https URL percent-encodes all of them.
FORBIDDEN = frozenset("<>\"'`\\ \t\r\n\x00") | frozenset(map(chr, range(0x20))) | {"\x7f"}


def url_problem(value) -> str:
    """Why `value` is not a usable unsubscribe link ("" when it is). Never echoes the
    value: it is personal."""
    if not isinstance(value, str) or not value.strip():
        return "unsubscribe_url is empty"
    if len(value) > MAX_LENGTH:
        return f"unsubscribe_url is longer than {MAX_LENGTH} characters"
    if any(c in FORBIDDEN for c in value):
        return ("unsubscribe_url has a space, quote, angle bracket, backslash or control "
                "character (percent-encode them)")
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a malformed port
    except ValueError:
        return "unsubscribe_url is not a well-formed URL"
    if parts.scheme.lower() != "https":
        return "unsubscribe_url must be an https:// link (RFC 8058 one-click needs https)"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "unsubscribe_url must not carry a user name or password"
    if not parts.hostname or port == 0:
        return "unsubscribe_url has no host"
    return ""


def headers(url: str) -> dict[str, str]:
    """The RFC 8058 one-click headers for a valid `url`."""
    return {"List-Unsubscribe": f"<{url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
