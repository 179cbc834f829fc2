"""What in content can change an assembly or a token's scope: the catalog epoch moves
with every change of these models (content.catalog_epoch)."""

from . import catalog_epoch
from .models import (
    Asset,
    Audience,
    Brand,
    Channel,
    ContentModule,
    Jurisdiction,
    Locale,
    MarketRule,
    ModuleVersion,
    Reference,
    Specialty,
    Stage,
)


def connect() -> None:
    # Versions (state, validity, tags; footers are modules too), their modules and brands,
    # market rules, and the taxonomy that selectors and token scopes name.
    catalog_epoch.watch(ModuleVersion, ContentModule, Brand, MarketRule, Asset, Reference,
                        Jurisdiction, Channel, Locale, Audience, Specialty, Stage)
