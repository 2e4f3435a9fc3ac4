"""Retention: per-reader events older than ENGAGEMENT_RETENTION_DAYS are deleted. Their hits are already in the
aggregate Tally (every hit is counted there when it is flushed); what only the events knew, how many distinct
readers opened and clicked, is added to UniqueRollup first, so the report's figures do not change."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from engagement.models import OPEN, Event, UniqueRollup, Verdict
from newsletter.conf import app_settings


def events_expire(now=None, days: int | None = None) -> int:
    """Roll up and delete expired events, one issue at a time. Returns how many were deleted. Safe to run twice:
    a second run finds nothing expired."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=app_settings.ENGAGEMENT_RETENTION_DAYS if days is None else days)
    deleted = 0
    issue_ids = set(Event.objects.filter(at__lt=cutoff).values_list("issue_id", flat=True).distinct())
    for issue_id in issue_ids:
        with transaction.atomic():
            expired = Event.objects.select_for_update().filter(issue_id=issue_id, at__lt=cutoff)
            ids = list(expired.values_list("id", flat=True))
            old = Event.objects.filter(id__in=ids, verdict=Verdict.HUMAN)
            # Distinct readers of the expired events not already counted by an event that stays.
            staying = Event.objects.filter(issue_id=issue_id, at__gte=cutoff, verdict=Verdict.HUMAN)
            for variant in set(old.values_list("variant", flat=True)):
                counts = {}
                for kind, condition in (("opens", Q(link_number=OPEN)), ("clicks", ~Q(link_number=OPEN))):
                    kept = staying.filter(condition, variant=variant).values("delivery_id")
                    counts[kind] = (
                        old.filter(condition, variant=variant)
                        .exclude(delivery_id__in=kept)
                        .aggregate(n=Count("delivery_id", distinct=True))["n"]
                    )
                rollup, _ = UniqueRollup.objects.get_or_create(issue_id=issue_id, variant=variant)
                UniqueRollup.objects.filter(pk=rollup.pk).update(
                    opens=F("opens") + counts["opens"], clicks=F("clicks") + counts["clicks"]
                )
            deleted += Event.objects.filter(id__in=ids).delete()[0]
    return deleted
