"""Thin Celery tasks: fetch by id, call one service. Names are stable (newsletter/dispatch.py enqueues by name);
arguments are ids (and test addresses).

Every task is safe to run twice: services claim rows in the database, so a re-delivered or duplicated task
message finds nothing left to do. No task runs long: batches are bounded and chains re-enqueue themselves.
"""

from celery import shared_task
from django.utils import timezone

from newsletter import delivery, dispatch

from .models import WorkerHeartbeat


@shared_task(name="newsletter.heartbeat", bind=True, ignore_result=True, soft_time_limit=10, time_limit=20)
def heartbeat_task(self) -> None:
    """Record that a worker is alive. Safe to run any number of times."""
    WorkerHeartbeat.objects.update_or_create(
        hostname=self.request.hostname or "unknown", defaults={"seen_at": timezone.now()}
    )


@shared_task(name=dispatch.MATERIALISE, ignore_result=True, soft_time_limit=50, time_limit=60)
def materialise_task(issue_id: int, after_subscriber_id: int = 0) -> None:
    """Create the issue's delivery rows in chunks for about 20 s, then continue in a new task. The batch chains
    start after the first stretch (a long list starts sending within seconds) and again when all rows exist, for
    chains that ran out of rows while the list was still growing."""
    first = after_subscriber_id == 0
    cursor = delivery.deliveries_materialise(issue_id, after_subscriber_id, budget_seconds=2.0 if first else 20.0)
    if cursor is not None:
        dispatch.materialise_later(issue_id, cursor)
    if cursor is None or first:
        dispatch.batches_start(issue_id)


@shared_task(name=dispatch.SEND_BATCH, ignore_result=True, soft_time_limit=240, time_limit=300)
def send_batch_task(issue_id: int, after_id: int = 0) -> None:
    """Send one batch of the issue, then queue the next link of this chain while rows remain, or try to finish.
    (The time limits exceed any batch: a batch stops by itself after SEND_BATCH_SECONDS.)"""
    result = delivery.deliveries_send_batch(issue_id, after_id)
    if result.more:
        dispatch.batch_next(issue_id, result.last_id)
    elif not result.stopped:
        delivery.send_finish(issue_id)


@shared_task(name=dispatch.SEND_WELCOME, ignore_result=True, soft_time_limit=240, time_limit=300)
def send_welcome_task(issue_id: int) -> None:
    """A welcome email's waiting rows (normally one), on the priority queue; again while rows remain."""
    if delivery.deliveries_send_batch(issue_id).more:
        dispatch.welcome_batch(issue_id)


@shared_task(name="newsletter.recover", ignore_result=True, soft_time_limit=50, time_limit=60)
def recover_task() -> None:
    """Beat, every RECOVERY_INTERVAL seconds: start due issues, re-queue expired leases, restart stalled sends,
    finish issues with nothing left."""
    delivery.issues_recover()


@shared_task(name=dispatch.SEND_TEST, ignore_result=True, soft_time_limit=50, time_limit=60)
def send_test_task(issue_id: int, addresses: list[str]) -> dict[str, str]:
    """A test send on the priority queue, so it never waits behind a big issue."""
    return delivery.proof_send(issue_id, addresses)
