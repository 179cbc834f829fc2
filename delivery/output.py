"""What a channel receives for a served assembly, as plain JSON-ready data.

The assemble endpoint answers with it, and the due queue hands it out with a lease
(`orchestration.leases`); `delivery.api.serializers.AssemblyOutputSerializer` declares the
same shape for the OpenAPI schema (tests/api/test_assemble_input.py and
tests/orchestration/test_leases.py hold the two together). Built directly: DRF's fields cost
more than the rest of a warm assembly's rendering.
"""

from __future__ import annotations


def assembly_output(result) -> dict:
    """Subject, html, text, manifest and mail headers of a served result."""
    return {"subject": _text(result.subject), "html": _text(result.html),
            "text": _text(result.text), "manifest": result.manifest,
            "headers": {str(k): _text(v) for k, v in result.headers.items()}}


def _text(value) -> str | None:
    return None if value is None else str(value)
