from django.apps import AppConfig
from django.db.models.signals import post_migrate


class JourneysConfig(AppConfig):
    name = "journeys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import epoch_signals

        epoch_signals.connect()
        post_migrate.connect(_after_migrate, sender=self,
                             dispatch_uid="tessera-journey-designer-perms")


def _after_migrate(sender, using="default", **kwargs):
    from django.contrib.auth.management import create_permissions

    from .permissions import ensure_designer_permissions

    create_permissions(sender, verbosity=0, using=using)
    ensure_designer_permissions()
