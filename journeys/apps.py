from django.apps import AppConfig


class JourneysConfig(AppConfig):
    name = "journeys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import epoch_signals

        epoch_signals.connect()
