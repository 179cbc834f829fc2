"""Delivery-log rows for the demo's recipients, so content performance per module version
(docs/analytics.md) has versions with figures on a fresh `make run`.

The demo does not write log rows itself: the delivery log is the compliance record. It
serves through the real batch path (`delivery.serving.serve_many`, as `assemble_batch`
does, caller: an operator at the shell) for the email and portal steps each demo recipient
reached (had an event at), under the recipient's demo id, so the log's pseudonym is the
demo enrollment's (`demo.events.pseudonym`) and their engagement counts for the versions
they were served. At most PER_STEP recipients per step (the lowest demo numbers), to keep
`load_demo` quick; served now (the log's time is the real serving time).

The recipients carry what the steps need (consent to the channel, an https unsubscribe
link, a name, a title, a specialty); refusals are counted and printed, never forced.
Idempotent: a journey whose demo recipients already appear in the log is left alone.
"""

from __future__ import annotations

from collections import defaultdict

from delivery.models import Delivery
from delivery.serving import OPERATOR, serve_many
from journeys.models import EngagementEvent, Journey, Step

SERVED_CHANNELS = ("email", "portal")
PER_STEP = 300
SPECIALTIES = ("cardiology", "internal_medicine", "nephrology")


def recipient(demo_id: str, n: int) -> dict:
    """A synthetic demo recipient: no person, only what the steps' content asks for."""
    return {"id": demo_id, "first_name": "Demo", "last_name": f"Recipient {n}", "title": "Dr",
            "specialty": SPECIALTIES[n % len(SPECIALTIES)], "practice_name": "Demo Pharmacy",
            "consent": {channel: True for channel in SERVED_CHANNELS},
            "unsubscribe_url": f"https://example.org/unsubscribe/demo-{n}"}


def serve(journey: Journey, ids: list[str], hashes: list[str]) -> tuple[int, int]:
    """Serve the journey's reached email/portal steps to its demo recipients (`ids[n]`, whose
    pseudonym is `hashes[n]`); (delivered, refused). Nothing when already served."""
    if Delivery.objects.filter(journey_slug=journey.slug,
                               recipient_pseudonym__in=hashes).exists():
        return 0, 0
    number = {h: n for n, h in enumerate(hashes)}
    steps = {s.pk: s for s in Step.objects.filter(
        journey=journey, channel__code__in=SERVED_CHANNELS).select_related("channel")}
    reached: dict[int, set[int]] = defaultdict(set)
    for step_id, who in (EngagementEvent.objects.filter(enrollment__journey=journey,
                                                        step_id__in=steps)
                         .values_list("step_id", "enrollment__recipient_hash").distinct()):
        if who in number:
            reached[step_id].add(number[who])
    locale = journey.locale.code
    delivered = refused = 0
    for step_id in sorted(reached):
        step = steps[step_id]
        chosen = sorted(reached[step_id])[:PER_STEP]
        for result in serve_many(step, [recipient(ids[n], n) for n in chosen],
                                 channel=step.channel.code, jurisdiction="US", locale=locale,
                                 caller=OPERATOR):
            delivered += result.ok
            refused += not result.ok
    return delivered, refused
