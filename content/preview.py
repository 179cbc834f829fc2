"""Render one module version as a reader would see it, for a sample or given recipient.

Used by the author admin and the reviewer screens. Tokens are filled from the allowlist
with escaped values (or the module's fallbacks); bodies are never evaluated as templates.
"""

from __future__ import annotations

from html import escape

from .tokens import RECIPIENT_FIELDS, compile_text, fill

SAMPLE_RECIPIENT = {
    "title": "Dr.",
    "first_name": "Alex",
    "last_name": "Morgan",
    "specialty": "Cardiology",
    "practice_name": "Riverside Heart Clinic",
    "city": "Springfield",
}


def personal_values(version, recipient: dict | None) -> dict[str, str]:
    """Raw (unescaped) values per allowed field: recipient first, then module fallbacks."""
    recipient = SAMPLE_RECIPIENT if recipient is None else recipient
    fallbacks = version.token_fallbacks or {}
    values = {}
    for name in RECIPIENT_FIELDS:
        value = recipient.get(name)
        values[name] = str(value) if value not in (None, "") else fallbacks.get(name, f"[{name}]")
    return values


def render_module_html(version, recipient: dict | None = None) -> str:
    values = {k: escape(v) for k, v in personal_values(version, recipient).items()}
    html = fill(compile_text(version.body_html), values)
    if version.asset_id:
        asset = version.asset
        html = (f'<img src="{escape(asset.image.url)}" alt="{escape(asset.alt_text)}" '
                f'width="{min(asset.width, 600)}">') + html
    return html


def render_module_text(version, recipient: dict | None = None) -> str:
    return fill(compile_text(version.body_text), personal_values(version, recipient))


def render_subject(version, recipient: dict | None = None) -> str:
    return fill(compile_text(version.subject), personal_values(version, recipient))
