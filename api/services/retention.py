"""Old API records are deleted: idempotency keys past their window, and webhook events (with their delivery log)
once every delivery is finished and the event is older than WEBHOOK_LOG_DAYS."""

from datetime import timedelta

from django.utils import timezone

from api.models import IdempotencyKey, WebhookDelivery, WebhookEvent
from newsletter.conf import app_settings


def api_records_prune() -> dict[str, int]:
    """Safe to run any time; returns how many rows of each kind went."""
    now = timezone.now()
    key_window = timedelta(hours=app_settings.API_IDEMPOTENCY_HOURS)
    keys, _ = IdempotencyKey.objects.filter(created_at__lt=now - key_window).delete()
    cutoff = now - timedelta(days=app_settings.WEBHOOK_LOG_DAYS)
    open_events = WebhookDelivery.objects.filter(
        status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.DELIVERING]
    ).values("event_id")
    events, _ = WebhookEvent.objects.filter(created_at__lt=cutoff).exclude(pk__in=open_events).delete()
    return {"idempotency_keys": keys, "webhook_rows": events}
