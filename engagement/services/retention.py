"""Retention: per-reader events older than ENGAGEMENT_RETENTION_DAYS are deleted. Nothing is lost from the report:
every hit is in the aggregate Tally from the moment it was flushed, and every distinct reader in UniqueTally from
the moment their first event was written; what goes is only the link between a reader and what they read."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from engagement.models import Event
from newsletter.conf import app_settings

CHUNK = 10_000


def events_expire(now=None, days: int | None = None) -> int:
    """Delete expired events in chunks (short transactions). Returns how many were deleted. Safe to run twice: a
    second run finds nothing expired."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=app_settings.ENGAGEMENT_RETENTION_DAYS if days is None else days)
    deleted = 0
    while True:
        ids = list(Event.objects.filter(at__lt=cutoff).values_list("id", flat=True)[:CHUNK])
        if not ids:
            return deleted
        deleted += Event.objects.filter(id__in=ids).delete()[0]
