from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ContentConfig(AppConfig):
    name = "content"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import epoch_signals, signals

        signals.connect()
        epoch_signals.connect()
        # After the auth permissions exist (they are created by post_migrate as well).
        post_migrate.connect(_after_migrate, sender=self, dispatch_uid="tessera-content-group-perms")


def _after_migrate(sender, using="default", **kwargs):
    from django.contrib.auth.management import create_permissions

    from .permissions import ensure_group_permissions

    # Make sure our permissions exist before granting them, whatever the receiver order.
    create_permissions(sender, verbosity=0, using=using)
    ensure_group_permissions()
