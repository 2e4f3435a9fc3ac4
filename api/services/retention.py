"""Old API records are deleted: idempotency keys past their window, and webhook events (with their delivery log)
once every delivery is finished and the event is older than MASTHEAD["WEBHOOK_LOG_DAYS"]."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from api.models import IdempotencyKey, WebhookDelivery, WebhookEvent


def api_records_prune() -> dict[str, int]:
    """Safe to run any time; returns how many rows of each kind went."""
    now = timezone.now()
    key_window = timedelta(hours=float(settings.MASTHEAD.get("API_IDEMPOTENCY_HOURS", 24)))
    keys, _ = IdempotencyKey.objects.filter(created_at__lt=now - key_window).delete()
    cutoff = now - timedelta(days=float(settings.MASTHEAD.get("WEBHOOK_LOG_DAYS", 30)))
    open_events = WebhookDelivery.objects.filter(
        status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.DELIVERING]
    ).values("event_id")
    events, _ = WebhookEvent.objects.filter(created_at__lt=cutoff).exclude(pk__in=open_events).delete()
    return {"idempotency_keys": keys, "webhook_rows": events}
