import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("masthead")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_old_connections(sender=None, **kwargs) -> None:
    """With CELERY_DB_REUSE_MAX set, Celery keeps a worker's database connection from task to task instead of
    reconnecting for each (a batch's connect and prepare cost more than its claim). What Django does around each
    request is done around each task instead: a connection that broke or outlived CONN_MAX_AGE is closed, so the
    next query opens a fresh one. Not for a task run eagerly (inside the caller's own transaction)."""
    if sender is None or getattr(sender.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
