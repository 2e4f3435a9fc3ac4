"""The only place the api app enqueues tasks: after the current transaction commits, by the task's stable name
(services never import tasks). `api.*` tasks run on the default queue (CELERY_TASK_ROUTES)."""

from __future__ import annotations

from collections.abc import Iterable

from celery import current_app
from django.db import transaction

WEBHOOK_DELIVER = "api.webhook_deliver"


def webhook_deliver_later(delivery_ids: Iterable[int]) -> None:
    """One delivery task per id, once the transaction that wrote (or re-queued) the rows commits."""
    ids = list(delivery_ids)
    transaction.on_commit(lambda: [current_app.send_task(WEBHOOK_DELIVER, args=[pk]) for pk in ids])
