from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    """Channel tokens, batch assembly jobs, the delivery log and webhooks."""

    name = "delivery"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from .webhooks import connect_signals

        connect_signals()
