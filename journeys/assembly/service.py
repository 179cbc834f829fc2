"""The entry points: read a step once (`load_context`), then assemble one recipient or many."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from itertools import islice

from ..models import Step
from . import ranking
from .context import PinnedStepContext, StepContext
from .results import AssemblyResult

DEFAULT_CHUNK_SIZE = 1000


def load_step(step: Step | int) -> Step:
    """The step itself (the context reads what it needs in its own queries)."""
    if isinstance(step, Step):
        return step
    return Step.objects.get(pk=step)


def load_context(step: Step, *, channel: str, jurisdiction: str, locale: str,
                 layout: str | None = None, now: datetime | None = None,
                 pinned: list[int | None] | None = None,
                 pinned_footer: int | None = None) -> StepContext:
    """Read everything the step needs for this channel, market and locale (constant queries).

    `pinned` (a manifest's version per slot) and `pinned_footer` (its footer version)
    reproduce that manifest instead.
    """
    kwargs = {"channel": channel, "jurisdiction": jurisdiction, "locale": locale,
              "layout": layout, "now": now}
    if pinned is not None:
        return PinnedStepContext(load_step(step), pinned=pinned, pinned_footer=pinned_footer,
                                 **kwargs)
    return StepContext(load_step(step), **kwargs)


def assemble_many(step: Step, recipients: Iterable[Mapping], *, channel: str, jurisdiction: str,
                  locale: str, layout: str | None = None, now: datetime | None = None,
                  chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[AssemblyResult]:
    """Assemble for many recipients, in order, preparing each combination once.

    Module version states are re-read at the start of every chunk; when any changed
    (a withdrawal, an expiry, a new approval) the context is read again, so a withdrawn
    version stops going out from the next chunk on.
    """
    ctx = None
    pending = iter(recipients)
    while chunk := list(islice(pending, chunk_size)):
        if ctx is None or not ctx.is_current():
            ctx = load_context(step, channel=channel, jurisdiction=jurisdiction, locale=locale,
                               layout=layout, now=now)
        ranking.prefetch(ctx, chunk)  # a ranked selector's profiles: one query per chunk
        for recipient in chunk:
            yield ctx.assemble(recipient)


def assemble(step: Step, recipient: Mapping, *, channel: str, jurisdiction: str, locale: str,
             now: datetime | None = None, layout: str | None = None,
             seen: Iterable = ()) -> AssemblyResult:
    """Assemble one step for one recipient, or say every reason it cannot be compliant.

    Version states are read from the database now. `seen` lists module ids or codes the
    recipient already received (selector slots skip them), e.g. an enrollment's
    `seen_module_ids`. Writes nothing.
    """
    ctx = load_context(step, channel=channel, jurisdiction=jurisdiction, locale=locale,
                       layout=layout, now=now)
    return ctx.assemble(recipient, seen=seen)
