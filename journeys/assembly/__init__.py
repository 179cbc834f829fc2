"""The assembly service: approved modules + a layout + one recipient → email or portal page.

One code path serves single and batch use. `load_context` reads everything a step needs
from the database once (`snapshot`: slots, candidate module versions with their tags,
companions, exclusions, signatures, the brand's approved footers). For each distinct
combination of module versions the context prepares the output once (`prepared`,
`rendering`: layout rendered, CSS inlined with css-inline, plain text laid out, tokens
compiled) and per recipient only checks consent and fields, substitutes escaped values and
hashes (`context`). `assemble` is a batch of one.

Every compliance rule is checked and every failing one reported (`rules`, ERROR_CODES):
every assembly carries the brand's approved footer for its market and locale, and every
email the recipient's unsubscribe link (in the footer and the `headers` of the result).
Recipient data is never stored or logged; the manifest carries only its sha256
(`manifest`). The process caches are in `cache`.
"""

from content.tokens import RECIPIENT_FIELDS

from .context import PinnedStepContext, StepContext
from .manifest import MANIFEST_VERSION, output_sha256, recipient_sha256
from .rendering import LAYOUT_TEMPLATES
from .rendering import LINE_BREAKS as _LINE_BREAKS
from .results import ERROR_CODES, AssemblyError, AssemblyResult
from .rules import ALLOWED_PURPOSES
from .service import DEFAULT_CHUNK_SIZE, assemble, assemble_many, load_context, load_step
from .snapshot import SlotSpec, VersionSnapshot

__all__ = [
    "ALLOWED_PURPOSES", "DEFAULT_CHUNK_SIZE", "ERROR_CODES", "LAYOUT_TEMPLATES",
    "MANIFEST_VERSION", "RECIPIENT_FIELDS", "_LINE_BREAKS", "AssemblyError", "AssemblyResult",
    "PinnedStepContext", "SlotSpec", "StepContext", "VersionSnapshot", "assemble",
    "assemble_many", "load_context", "load_step", "output_sha256", "recipient_sha256",
]
