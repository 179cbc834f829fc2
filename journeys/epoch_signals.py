"""What in journeys can change an assembly: journeys (markets), stages, steps, slots
move the catalog epoch (content.catalog_epoch)."""

from content import catalog_epoch

from .models import Journey, Slot, Stage, Step


def connect() -> None:
    catalog_epoch.watch(Journey, Stage, Step, Slot)
