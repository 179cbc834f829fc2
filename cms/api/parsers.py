"""The one JSON guard: every JSON body Tessera reads goes through `loads`.

Python's parser has no limits of its own: `"[" * 10000` exhausts the interpreter stack
(RecursionError), `1e999999` silently becomes infinity (which the renderer then cannot
write back), and a 100,000-digit integer raises a ValueError from int() or, below Python's
4,300-digit cap, reaches the database as a number no column can hold. So the guard refuses:

- bodies above DATA_UPLOAD_MAX_MEMORY_SIZE (413 `request_too_large`, Django's own limit);
- nesting deeper than `MAX_DEPTH` arrays/objects (400 `too_deep`);
- numbers a 64-bit integer or a finite double cannot hold, and NaN/Infinity
  (400 `number_out_of_range`), following RFC 8259 §6 on interoperable numbers;
- anything else the parser cannot read (400 `malformed_json`), whatever it raises.

`GuardedJSONParser` is DRF's DEFAULT_PARSER_CLASSES; `GuardedJSONFormField` is the same
guard for Django forms (the admin's JSON fields).
"""

from __future__ import annotations

import json
import math
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, ValidationError
from rest_framework import exceptions
from rest_framework.parsers import JSONParser

# Tessera's deepest legitimate body (a batch: object → recipients → recipient → consent)
# is 4 levels; 32 leaves room for any client, far below where recursion becomes a risk.
MAX_DEPTH = 32
INT_MIN, INT_MAX = -(2 ** 63), 2 ** 63 - 1
# A 64-bit integer has at most 19 digits (+ sign); longer strings are refused before int()
# is asked to convert them (the conversion itself is quadratic in the digits).
_MAX_INT_CHARS = 20


class JSONRefused(ValueError):
    """A JSON document the guard refuses; `code` is the API error code."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _parse_int(text: str) -> int:
    if len(text) > _MAX_INT_CHARS or not INT_MIN <= int(text) <= INT_MAX:
        raise JSONRefused("number_out_of_range",
                          f"An integer must fit in 64 bits ({INT_MIN} to {INT_MAX}); "
                          f"got one of {len(text.lstrip('-'))} digits.")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONRefused("number_out_of_range",
                          f"The number {text[:40]}{'…' if len(text) > 40 else ''} is beyond "
                          "the range of a double-precision number.")
    return value


def _parse_constant(name: str):
    raise JSONRefused("number_out_of_range", f"{name} is not a JSON number.")


def depth_of(value: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0, `[]` is 1), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _too_deep() -> JSONRefused:
    return JSONRefused("too_deep", f"JSON may nest arrays and objects at most {MAX_DEPTH} deep.")


def loads(text: str | bytes, *, encoding: str = "utf-8") -> Any:
    """Parse JSON under the guard's limits; raise `JSONRefused` (never anything else)."""
    try:
        if isinstance(text, bytes):
            text = text.decode(encoding)
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float,
                           parse_constant=_parse_constant)
    except JSONRefused:
        raise
    except RecursionError:
        # The C scanner gave up far beyond MAX_DEPTH: that is what the caller sent.
        raise _too_deep() from None
    except Exception as exc:  # ValueError, UnicodeDecodeError, LookupError, MemoryError...
        raise JSONRefused("malformed_json", f"Malformed JSON: {str(exc)[:200]}") from None
    if depth_of(value) > MAX_DEPTH:
        raise _too_deep()
    return value


class GuardedJSONParser(JSONParser):
    """DRF's JSON parser behind the guard: 413 over the size limit, 400 with a code else."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(raw) > limit:
            raise RequestDataTooBig()  # the exception handler answers 413 request_too_large
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return loads(raw, encoding=encoding)
        except JSONRefused as refused:
            raise exceptions.ParseError(refused.detail, code=refused.code) from None


class GuardedJSONFormField(forms.JSONField):
    """forms.JSONField behind the guard (Django's own catches only JSONDecodeError, so deep
    nesting in an admin JSON field is a 500)."""

    def to_python(self, value):
        if isinstance(value, str) and value.strip() and not self.disabled:
            try:
                loads(value)
            except JSONRefused as refused:
                raise ValidationError(refused.detail, code=refused.code) from None
        return super().to_python(value)

    def bound_data(self, data, initial):
        # Re-displaying a refused value parses it again (Django catches only JSONDecodeError):
        # show what was typed, unparsed.
        if self.disabled or data is None:
            return super().bound_data(data, initial)
        try:
            loads(data)
        except JSONRefused:
            return forms.fields.InvalidJSONInput(data)
        return super().bound_data(data, initial)

    def has_changed(self, initial, data):
        try:
            return super().has_changed(initial, data)
        except (RecursionError, ValueError):
            return True
