"""Snapshots of finished issues' delivery figures (IssueSnapshot), refreshed by beat: the report of a finished
issue reads one row instead of counting every delivery. An issue still sending is always counted live."""

from __future__ import annotations

from django.db.models import Count, Q
from django.utils import timezone

from engagement.models import IssueSnapshot
from newsletter.models import Delivery, Issue

REFRESH_MINUTES = 5


def came_back_counts(issue: Issue) -> dict[str, int]:
    """Bounces (hard, soft) and complaints of the issue, through the partial index `delivery_came_back`."""
    return (
        Delivery.objects.filter(issue=issue)
        .filter(~Q(bounce_kind="") | Q(complained_at__isnull=False))
        .aggregate(
            hard=Count("id", filter=Q(bounce_kind=Delivery.BounceKind.HARD)),
            soft=Count("id", filter=Q(bounce_kind=Delivery.BounceKind.SOFT)),
            complaints=Count("id", filter=Q(complained_at__isnull=False)),
        )
    )


def issue_snapshot_take(issue: Issue, unsubscribes: int) -> IssueSnapshot:
    """Count the issue's deliveries now and keep the figures. Safe to run twice (the row is replaced)."""
    rows = Delivery.objects.filter(issue=issue).values("status", "variant").annotate(n=Count("id"))
    back = came_back_counts(issue)
    snapshot, _ = IssueSnapshot.objects.update_or_create(
        issue=issue,
        defaults={
            "statuses": [list(row) for row in rows.values_list("status", "variant", "n")],
            "bounced_hard": back["hard"],
            "bounced_soft": back["soft"],
            "complaints": back["complaints"],
            "unsubscribes": unsubscribes,
            "taken_at": timezone.now(),
        },
    )
    return snapshot


def issue_snapshot(issue: Issue) -> IssueSnapshot | None:
    """The snapshot the report may use: a finished issue's, taken after it finished."""
    if issue.status != Issue.Status.SENT or issue.finished_at is None:
        return None
    return IssueSnapshot.objects.filter(issue=issue, taken_at__gte=issue.finished_at).first()
