"""Celery application. Eager in the embedded profile, a real broker when CELERY_BROKER_URL is set."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cms.settings")

app = Celery("tessera")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def close_obsolete_connections(sender=None, **kwargs) -> None:
    """A worker's task is to its database connection what a request is to a web process's:
    Django's rule closes the connection once it is older than DATABASE_CONN_MAX_AGE (0, the
    default, closes it after every task) or unusable after an error. Eager tasks run inside
    their caller's request or transaction, whose connection is not theirs to close."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
