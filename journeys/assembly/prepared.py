"""One combination of module versions in a step context, checked and rendered once."""

from __future__ import annotations

from content.tokens import RECIPIENT_FIELDS, TOKEN_RE

from .. import unsubscribe
from . import rules
from .manifest import build_manifest
from .rendering import Page, render
from .results import AssemblyError


class Prepared:
    """What every recipient of one combination shares: the rule errors of its versions,
    the recipient fields it uses (and which of them have no fallback), its manifest and,
    when it is compliant, its rendered outputs."""

    def __init__(self, ctx, picks: list):
        self.all_picks = picks
        self.picks = [(slot, v) for slot, v in picks if v is not None]
        versions = [v for _, v in self.picks]
        errors: list[AssemblyError] = []
        for v in versions:
            errors += ctx.version_errors(v)
        errors += rules.combination_errors(versions)
        errors += rules.market_rule_errors(versions, ctx.target)
        errors += rules.form_2253_errors(versions, ctx.target)
        self.errors = errors
        self.keys: dict[str, tuple[str, str | None]] = {}
        self.fields: list[str] = []
        self.required_fields: list[tuple[str, str]] = []  # (field, module code)
        self.manifest = build_manifest(ctx, picks)
        self.html = self.text = self.subject = self.preheader = None
        # The recipient fields are listed even when a rule already refuses the combination:
        # a refusal names every failing rule, missing recipient fields included. The
        # footer may personalise too.
        for v in (*versions, *([ctx.footer] if ctx.footer else [])):
            used = {m for t in (v.subject, v.body_html, v.body_text) for m in TOKEN_RE.findall(t)}
            for name in sorted(used):
                if name not in self.fields:
                    self.fields.append(name)
                # A token outside the allowlist is refused as unknown_token, not asked for.
                if not v.token_fallbacks.get(name) and name in RECIPIENT_FIELDS:
                    self.required_fields.append((name, v.code))
        if errors:
            return
        rendered = render(versions, Page(
            layout=ctx.layout, layout_sha256=ctx.layout_info["sha256"], locale=ctx.locale,
            jurisdiction=ctx.jurisdiction_code, year=ctx.year, brand_name=ctx.brand_name,
            unsubscribe=ctx.channel == rules.EMAIL_CHANNEL), footer=ctx.footer)
        if unsubscribe.FIELD in rendered.keys:
            self.fields.append(unsubscribe.FIELD)  # checked by rules.unsubscribe_errors
        self.html, self.text = rendered.html, rendered.text
        self.subject, self.preheader = rendered.subject, rendered.preheader
        self.keys = dict(rendered.keys)

    def manifest_without_output(self) -> dict:
        return dict(self.manifest)
