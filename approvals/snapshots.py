"""What reviewers saw in a round, kept on the round (`ReviewRound.content_snapshot`).

A version returned for changes is edited in place and resubmitted as its next round, so the
round-to-round diff and the annotation carry-over need the previous round's content: the
submission stores it here (plain JSON; the sha256 on the round is what was signed, this is
for reading). Rendered text is the reviewer preview's (sample recipient), whitespace
collapsed, per block — the text a text-quote annotation quotes.
"""

from __future__ import annotations

import re

from lxml import html as lxml_html

BLOCKS = ("subject", "body", "text")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Collapse whitespace (quotes selected in a browser and text extracted here agree)."""
    return _SPACE.sub(" ", text or "").strip()


def html_text(fragment: str) -> str:
    if not (fragment or "").strip():
        return ""
    try:
        root = lxml_html.fragment_fromstring(fragment, create_parent="div")
    except Exception:  # malformed markup: fall back to tag stripping
        return normalise(re.sub(r"<[^>]+>", " ", fragment))
    return normalise(root.text_content())


def rendered_blocks(version) -> dict[str, str]:
    """The version's rendered text per block: subject, body (the preview), text (plain)."""
    from content.preview import render_module_html, render_module_text, render_subject

    return {
        "subject": normalise(render_subject(version)),
        "body": html_text(render_module_html(version)),
        "text": normalise(render_module_text(version)),
    }


def anchor_text_present(anchor: dict, blocks: dict[str, str]) -> bool:
    """Whether a text-quote anchor's exact text still occurs (in its block, or anywhere when
    the block is unknown)."""
    exact = normalise((anchor or {}).get("exact", ""))
    if not exact:
        return False
    block = (anchor or {}).get("block")
    haystacks = [blocks[block]] if block in blocks else list(blocks.values())
    return any(exact in text for text in haystacks)


def content_snapshot(version) -> dict:
    """Subject, HTML, plain text, rendered text per block, image and tags of `version`."""
    from content.preview import render_module_html

    def codes(name, attr="code"):
        return sorted(str(getattr(obj, attr)) for obj in getattr(version, name).all())

    asset = version.asset if version.asset_id else None
    return {
        "sha256": version.sha256,
        "subject": version.subject,
        "body_html": version.body_html,
        "body_text": version.body_text,
        "rendered_html": render_module_html(version),
        "rendered": rendered_blocks(version),
        "asset": ({"id": asset.pk, "sha256": getattr(asset, "content_sha256", ""),
                   "alt_text": asset.alt_text} if asset else None),
        "audiences": codes("audiences"),
        "specialties": codes("specialties"),
        "stages": codes("stages"),
        "jurisdictions": codes("jurisdictions"),
        "channels": codes("channels"),
        "citations": [{"id": ref.pk, "label": str(ref)} for ref in
                      version.citations.order_by("pk")],
        "requires": codes("requires"),
        "excludes": codes("excludes"),
    }
