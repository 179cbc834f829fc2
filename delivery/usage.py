"""Where-used selectors: which journeys and steps use a module version, and how often it
went out, per channel and jurisdiction; which approved versions nobody uses."""

from __future__ import annotations

from django.db.models import Count, Exists, OuterRef, Q

from content.models import ModuleVersion, VersionState
from journeys.models import Slot

from .models import DeliveredVersion


def steps_using(version: ModuleVersion) -> list[dict]:
    """Steps whose slots bind the version's module, or whose selectors could pick it."""
    module = version.module
    slots = (
        Slot.objects.filter(
            Q(module_id=module.pk)
            | Q(module__isnull=True, selector_kind=module.kind, step__journey__brand_id=module.brand_id)
        )
        .values("step__journey__slug", "step__journey__name", "step__key", "step__name",
                "step__channel__code", "module_id")
        .order_by("step__journey__slug", "step__key")
    )
    seen: dict[tuple[str, str], dict] = {}
    for slot in slots:
        key = (slot["step__journey__slug"], slot["step__key"])
        how = "fixed" if slot["module_id"] else "selector"
        entry = seen.setdefault(key, {
            "journey": slot["step__journey__slug"], "journey_name": slot["step__journey__name"],
            "step": slot["step__key"], "step_name": slot["step__name"],
            "channel": slot["step__channel__code"], "binding": how,
        })
        if how == "fixed":
            entry["binding"] = "fixed"
    return list(seen.values())


def delivery_counts(version: ModuleVersion) -> list[dict]:
    """Deliveries that contained the version, per channel and jurisdiction."""
    return list(
        DeliveredVersion.objects.filter(version=version)
        .values("channel", "jurisdiction")
        .annotate(deliveries=Count("id"))
        .order_by("channel", "jurisdiction")
    )


def usage(version: ModuleVersion) -> dict:
    counts = delivery_counts(version)
    return {
        "module": version.module.code,
        "version": version.number,
        "state": version.state,
        "steps": steps_using(version),
        "deliveries": counts,
        "total_deliveries": sum(c["deliveries"] for c in counts),
    }


def unused_approved_versions(queryset=None):
    """Approved versions no journey binds and nothing has delivered: candidates not to
    re-certify. `queryset` narrows (e.g. to a person's brands)."""
    qs = queryset if queryset is not None else ModuleVersion.objects.all()
    return (
        qs.filter(state=VersionState.APPROVED)
        .annotate(
            delivered=Exists(DeliveredVersion.objects.filter(version=OuterRef("pk"))),
            bound=Exists(Slot.objects.filter(module_id=OuterRef("module_id"))),
        )
        .filter(delivered=False, bound=False)
        .select_related("module", "module__brand")
        .order_by("expires_at", "module__code")
    )
