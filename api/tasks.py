"""Thin webhook tasks: ids in, one service call. Retries are rows with a due time that beat's dispatcher polls
(never a far-ahead countdown on Redis)."""

from celery import shared_task

from api.services.retention import api_records_prune
from api.webhooks.delivery import webhook_deliver, webhooks_dispatch


@shared_task(name="api.webhook_deliver", soft_time_limit=60, time_limit=90, ignore_result=True)
def webhook_deliver_task(delivery_id: int) -> str:
    return webhook_deliver(delivery_id)


@shared_task(name="api.webhooks_dispatch", soft_time_limit=60, time_limit=90, ignore_result=True)
def webhooks_dispatch_task() -> int:
    return webhooks_dispatch()


@shared_task(name="api.prune", soft_time_limit=300, time_limit=360, ignore_result=True)
def api_prune_task() -> dict[str, int]:
    return api_records_prune()
