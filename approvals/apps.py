from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Approvals (MLR review)"

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.db.models.signals import pre_delete

        from . import epoch_signals
        from .guards import refuse_user_deletion

        pre_delete.connect(refuse_user_deletion, sender=get_user_model(),
                           dispatch_uid="tessera-refuse-user-deletion")
        epoch_signals.connect()
        from . import author_admin

        author_admin.connect()  # review feedback and recall on the author's version page
