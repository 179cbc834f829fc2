"""The API's JSON renderer: DRF's `JSONRenderer`, with the encoding done by orjson.

With the standard library's encoder, JSON was about a tenth of a warm single assembly's
CPU in the web worker: this answer (an email's manifest, html and text) and the manifest
written to the delivery log (docs/performance.md, "Server-bound hot statements"). The
output means the same as DRF's:
- compact and UTF-8;
- U+2028 and U+2029 escaped;
- dates, times, decimals, lazy strings and anything else orjson does not know are
  encoded by DRF's own encoder.

An indented answer (`Accept: application/json; indent=4`, the browsable API), a setting
other than DRF's defaults, or a value orjson refuses (an integer beyond 64 bits) goes to
DRF's renderer unchanged (tests/api/test_renderer.py).
"""

from __future__ import annotations

import orjson
from rest_framework import renderers

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
_LINE_SEPARATORS = (("\u2028".encode(), b"\\u2028"), ("\u2029".encode(), b"\\u2029"))


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if (data is None or self.ensure_ascii or not self.compact
                or self.get_indent(accepted_media_type, renderer_context or {}) is not None):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            encoded = orjson.dumps(data, default=self.encoder_class().default, option=_OPTIONS)
        except orjson.JSONEncodeError:
            return super().render(data, accepted_media_type, renderer_context)
        if b"\xe2\x80" in encoded:
            for raw, escaped in _LINE_SEPARATORS:
                encoded = encoded.replace(raw, escaped)
        return encoded
