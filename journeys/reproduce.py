"""Re-render a manifest and say whether the output is byte for byte what was delivered.

Compliance asks months later "what exactly did this person receive?". Given the manifest
and the same recipient data (which Tessera never kept), `reproduce` renders the step again
with the module versions and the time pinned from the manifest — through the assembly
service's own rendering code, without re-checking today's approval states — and compares
the sha256 of the output with the one recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from .assembly import AssemblyResult, load_context, recipient_sha256
from .models import Step


@dataclass
class Reproduction:
    matches: bool
    expected_sha256: str
    actual_sha256: str | None
    result: AssemblyResult | None
    problems: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.matches:
            note = (" Note: " + " ".join(self.problems)) if self.problems else ""
            return f"Reproduced: output sha256 {self.actual_sha256} matches the manifest.{note}"
        return "Not reproduced: " + " ".join(self.problems)


def reproduce(manifest: Mapping, recipient: Mapping) -> Reproduction:
    """Render `manifest` again for `recipient` and compare the output sha256."""
    expected = (manifest.get("output_sha256") or "") if isinstance(manifest, Mapping) else ""
    required = ("journey", "step", "channel", "jurisdiction", "locale", "assembled_at",
                "output_sha256")
    absent = [k for k in required if not isinstance(manifest, Mapping) or not manifest.get(k)]
    if absent:
        return Reproduction(False, expected, None, None,
                            [f"The manifest lacks {', '.join(absent)}."])
    try:
        assembled_at = datetime.fromisoformat(str(manifest["assembled_at"]).replace("Z", "+00:00"))
    except ValueError:
        return Reproduction(False, expected, None, None,
                            [f"assembled_at {str(manifest['assembled_at'])[:40]!r} is not a time."])
    problems: list[str] = []
    step = (Step.objects.select_related("journey")
            .filter(journey__slug=manifest.get("journey"), key=manifest.get("step")).first())
    if step is None:
        return Reproduction(False, expected, None, None, [
            f"Journey {manifest.get('journey')!r} has no step {manifest.get('step')!r} any more."])
    if recipient_sha256(recipient) != manifest.get("recipient_sha256"):
        problems.append("The recipient data given is not the data the manifest was made from "
                        "(its sha256 differs).")
    pinned = manifest.get("slots")
    if pinned is None:
        pinned = [m["version_id"] for m in manifest.get("modules", [])
                  if m.get("slot", 0) is not None]  # the footer has no slot
    layout = (manifest.get("layout") or {}).get("name")
    footer = manifest.get("footer")
    ctx = load_context(step, channel=manifest["channel"], jurisdiction=manifest["jurisdiction"],
                       locale=manifest["locale"], layout=layout, now=assembled_at, pinned=pinned,
                       pinned_footer=footer if isinstance(footer, int) else None)
    missing = [i for i in pinned if i and i not in ctx.versions]
    if missing:
        problems.append(f"Module version id(s) {missing} no longer exist.")
    if ctx.layout_info["sha256"] != (manifest.get("layout") or {}).get("sha256"):
        problems.append("The layout templates changed since (layout sha256 differs).")
    result = ctx.assemble(recipient)
    actual = result.manifest.get("output_sha256") if result.ok else None
    if not result.ok:
        problems.append("Rendering failed: " + "; ".join(e.detail for e in result.errors))
    matches = actual is not None and actual == expected
    if not matches and actual is not None:
        problems.append(f"Output sha256 {actual} differs from the manifest's {expected}.")
    return Reproduction(matches, expected, actual, result, problems)
