"""The only place the newsletter app enqueues tasks. Always after the current transaction commits (a task must
never run before the rows it reads exist), and by the task's stable name, so services never import tasks.

Routing (which queue) is by name too, in CELERY_TASK_ROUTES.
"""

from __future__ import annotations

from celery import current_app
from django.db import transaction

from newsletter.conf import app_settings

MATERIALISE = "newsletter.materialise"
SEND_BATCH = "newsletter.send_batch"
SEND_TEST = "newsletter.send_test"
SEND_WELCOME = "newsletter.send_welcome"


def _enqueue(name: str, *args) -> None:
    transaction.on_commit(lambda: current_app.send_task(name, args=list(args)))


def materialise_later(issue_id: int, after_subscriber_id: int = 0) -> None:
    """Create (the rest of) the issue's delivery rows in a task."""
    _enqueue(MATERIALISE, issue_id, after_subscriber_id)


def batches_start(issue_id: int, chains: int | None = None) -> None:
    """Start `chains` (SEND_CHAINS) batch chains for the issue."""
    for _ in range(chains or max(1, int(app_settings.SEND_CHAINS))):
        _enqueue(SEND_BATCH, issue_id, 0)


def batch_next(issue_id: int, after_id: int) -> None:
    """The next link of a chain: the batch after delivery id `after_id`."""
    _enqueue(SEND_BATCH, issue_id, after_id)


def welcome_batch(issue_id: int) -> None:
    """Send a welcome email's waiting rows, on the priority queue (a reader who just confirmed should not wait
    behind a big issue)."""
    _enqueue(SEND_WELCOME, issue_id)


def test_send_later(issue_id: int, addresses: list[str]) -> None:
    """A test send, on the priority queue."""
    _enqueue(SEND_TEST, issue_id, addresses)
