from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    """Channel tokens, serving, batch assembly jobs, the delivery log and webhooks."""

    name = "delivery"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from cms.api.auth import register_key_resolver

        from . import epoch_signals
        from .tokens import client_for_key
        from .webhooks import connect_signals

        # The API's token authentication (cms, the floor below) looks keys up here.
        register_key_resolver(client_for_key)
        connect_signals()
        epoch_signals.connect()
