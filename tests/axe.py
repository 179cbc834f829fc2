"""axe-core in the browser tests: one call per page state, serious and critical asserted.

    from tests.axe import assert_no_serious_axe_violations
    assert_no_serious_axe_violations(page, "review inbox at 390 px")

Runs axe-core (axe-playwright-python ships it) in the page as it is now and raises an
AssertionError naming every serious or critical violation: the rule, its help text and
link, and the first nodes' selectors and failure summaries, so the failure says what to
fix. Returns every violation (minor and moderate too) for a test that wants to look.

Playwright evaluates the script through the DevTools protocol, which the page's Content
Security Policy does not govern, so pages keep their strict CSP while they are checked.
"""

from __future__ import annotations

from functools import lru_cache

BLOCKING_IMPACTS = frozenset({"serious", "critical"})
_NODES_SHOWN = 5


@lru_cache(maxsize=1)
def _axe():
    from axe_playwright_python.sync_playwright import Axe

    return Axe()


def axe_violations(page, context=None) -> list[dict]:
    """Every axe-core violation on the page (or within `context`, an axe context:
    a selector, or {"include": [...], "exclude": [...]})."""
    # The page marks boxes that scroll sideways as focusable (cms/static/tessera/tessera.js)
    # on resize; run it now so a viewport change just made is reflected.
    page.evaluate("window.Tessera && window.Tessera.markScrollables && window.Tessera.markScrollables()")
    results = _axe().run(page, context=context)
    return list(results.response.get("violations", []))


def describe(violations: list[dict]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"- [{violation.get('impact')}] {violation['id']}: {violation.get('help')} "
                     f"({violation.get('helpUrl', '')})")
        nodes = violation.get("nodes", [])
        for node in nodes[:_NODES_SHOWN]:
            target = " ".join(str(t) for t in node.get("target", []))
            summary = " ".join((node.get("failureSummary") or "").split())
            lines.append(f"    {target}: {summary[:300]}")
        if len(nodes) > _NODES_SHOWN:
            lines.append(f"    … and {len(nodes) - _NODES_SHOWN} more")
    return "\n".join(lines)


def assert_no_serious_axe_violations(page, context_label: str, *, context=None) -> list[dict]:
    """Raise AssertionError listing the serious and critical violations; return them all."""
    violations = axe_violations(page, context)
    blocking = [v for v in violations if v.get("impact") in BLOCKING_IMPACTS]
    if blocking:
        raise AssertionError(
            f"axe-core: {len(blocking)} serious/critical violation(s) on {context_label} "
            f"({page.url}):\n{describe(blocking)}")
    return violations


def assert_no_horizontal_scroll(page, context_label: str) -> None:
    """The page itself does not scroll sideways (wide tables and maps scroll in their own
    box): document width within the viewport's."""
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.evaluate("document.documentElement.clientWidth")
    if width > viewport:
        wide = page.evaluate(
            """(limit) => Array.from(document.querySelectorAll('body *'))
                 .filter(e => e.getBoundingClientRect().right > limit + 1)
                 .filter(e => !e.closest('[data-scrolls]') && getComputedStyle(e).position !== 'fixed')
                 .slice(0, 8).map(e => e.tagName.toLowerCase()
                   + (e.id ? '#' + e.id : '')
                   + (e.className && typeof e.className === 'string'
                      ? '.' + e.className.trim().split(/\\s+/).join('.') : '')
                   + ' right=' + Math.round(e.getBoundingClientRect().right))""", viewport)
        raise AssertionError(f"{context_label}: page scrolls sideways ({width} px > {viewport} px); "
                             f"widest elements: {wide}")
