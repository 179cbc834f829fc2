"""Celery tasks of the content app (eager in the embedded profile)."""

from __future__ import annotations

from celery import shared_task
from django.contrib.auth import get_user_model


@shared_task(bind=True, max_retries=3, default_retry_delay=10)
def make_asset_renditions(self, asset_id: int, acting_user_id: int) -> dict[str, str]:
    """Make the email (600 px), 2x (1200 px) and thumbnail (200 px) copies of an asset.

    Carries the id of the user who uploaded, so the history names them, not "system".
    A missing asset (deleted before the task ran) is not an error: there is nothing to do.
    """
    from .assets import make_renditions
    from .models import Asset

    asset = Asset.objects.filter(pk=asset_id).select_related("brand").first()
    if asset is None:
        return {}
    user = get_user_model().objects.filter(pk=acting_user_id).first()
    return make_renditions(asset, acting_user=user)
