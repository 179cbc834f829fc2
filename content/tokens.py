"""Personalization tokens: one syntax, one allowlist, compiled once and substituted fast.

Module bodies are never evaluated as templates. A token `{{ recipient.last_name }}` is a
placeholder: `compile_text` splits a text into literal parts and field references once, and
`fill` joins them with values the caller has already escaped for the output format. Any
other brace syntax an author or a recipient smuggles in stays inert text.

"Token" means two things in Tessera: here, a personalisation placeholder in module text;
in the API, a channel's credential (`ChannelToken`, `Authorization: Token <key>`, see
`cms.api.auth`). This module is only about the first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# The only fields a module may personalise with, as {{ recipient.<field> }}.
RECIPIENT_FIELDS: tuple[str, ...] = (
    "title", "first_name", "last_name", "specialty", "practice_name", "city",
)
TOKEN_RE = re.compile(r"\{\{\s*recipient\.([a-z_]+)\s*\}\}")
# Anything that looks like template syntax; each match must be a well-formed known token.
TEMPLATE_SYNTAX_RE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}|\{\{|\{%|\{#", re.DOTALL)


@dataclass(frozen=True)
class CompiledText:
    """A text split into literal strings (even indexes) and field names (odd indexes)."""

    parts: tuple[str, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        return self.parts[1::2]


def compile_text(text: str) -> CompiledText:
    return CompiledText(tuple(TOKEN_RE.split(text or "")))


def fill(compiled: CompiledText, values: Mapping[str, str]) -> str:
    """Substitute already-escaped values; a field missing from `values` raises KeyError."""
    parts = compiled.parts
    if len(parts) == 1:
        return parts[0]
    out = list(parts)
    for i in range(1, len(out), 2):
        out[i] = values[out[i]]
    return "".join(out)


def find_tokens(text: str) -> list[str]:
    """The recipient fields a text uses, in order of first appearance."""
    return list(dict.fromkeys(TOKEN_RE.findall(text or "")))


def token_errors(text: str) -> list[str]:
    """Every unknown or malformed token in `text`, each named in words."""
    errors = []
    for match in TEMPLATE_SYNTAX_RE.finditer(text or ""):
        snippet = match.group(0)
        token = TOKEN_RE.fullmatch(snippet)
        if token is None:
            errors.append(
                f"Malformed token {snippet[:60]!r}: use {{{{ recipient.<field> }}}} with one of "
                f"{', '.join(RECIPIENT_FIELDS)}."
            )
        elif token.group(1) not in RECIPIENT_FIELDS:
            errors.append(
                f"Unknown token {snippet!r}: recipient.{token.group(1)} is not an allowed field "
                f"({', '.join(RECIPIENT_FIELDS)})."
            )
    return errors
