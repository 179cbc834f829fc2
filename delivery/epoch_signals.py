"""Channel tokens (revocation, scope) move the catalog epoch, so cached token scopes
(delivery.tokens) are read again (content.catalog_epoch)."""

from content import catalog_epoch

from .models import ChannelToken


def connect() -> None:
    catalog_epoch.watch(ChannelToken)
