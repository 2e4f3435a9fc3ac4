"""Figures per variant of an issue, for the report and for the A/B subject test built on top of it.

`variant_counts(issue)` answers from aggregate Tally rows (every hit, whatever the mode) and, for distinct
readers, from UniqueTally (counted as per-reader events are written); "unique" is None where it cannot be known (an
aggregate-mode issue measures no reader, so it has no distinct count by design).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Count, Sum

from engagement.models import OPEN, Tally, UniqueTally, Verdict
from engagement.services.snapshots import issue_snapshot
from newsletter.models import Delivery, Issue, TrackingMode


@dataclass
class VariantCounts:
    delivered: int = 0
    human_opens: int = 0
    human_clicks: int = 0
    machine_opens: int = 0  # scanners, prefetch, and the two image proxies
    machine_clicks: int = 0
    unique_opens: int | None = None  # distinct readers (per-reader mode, readers who agreed only)
    unique_clicks: int | None = None

    @property
    def click_rate(self) -> float | None:
        return self.human_clicks / self.delivered if self.delivered else None


def delivery_status_counts(issue: Issue) -> dict[tuple[str, int], int]:
    """Deliveries per (status, variant), in one pass. A finished issue's figures are final (a bounce or complaint
    changes no status): they come from its snapshot (services/snapshots.py) or are kept in the cache, keyed by
    when it finished, instead of counting a million rows on every view; a resend changes the status and the key."""
    snapshot = issue_snapshot(issue)
    if snapshot is not None:
        return {(status, variant): n for status, variant, n in snapshot.statuses}
    key = f"engagement:deliveries:{issue.pk}:{issue.status}:{issue.finished_at and issue.finished_at.timestamp()}"
    counts = cache.get(key) if issue.status == Issue.Status.SENT else None
    if counts is None:
        rows = Delivery.objects.filter(issue=issue).values("status", "variant").annotate(n=Count("id"))
        counts = {(status, variant): n for status, variant, n in rows.values_list("status", "variant", "n")}
        if issue.status == Issue.Status.SENT:
            cache.set(key, counts, 24 * 3600)
    return counts


def delivered_by_variant(issue: Issue) -> dict[int, int]:
    """Messages the receiving servers accepted, per variant."""
    counts: dict[int, int] = {}
    for (status, variant), n in delivery_status_counts(issue).items():
        if status == Delivery.Status.SENT:
            counts[variant] = counts.get(variant, 0) + n
    return counts


def variant_counts(issue: Issue) -> dict[int, VariantCounts]:
    """Per variant (0 without an A/B test): delivered, human and machine opens and clicks, unique readers where
    known. Every variant that has a delivery is present."""
    result: dict[int, VariantCounts] = {}
    for variant, n in delivered_by_variant(issue).items():
        result.setdefault(variant, VariantCounts()).delivered = n
    tallies = (
        Tally.objects.filter(issue=issue)
        .values("variant", "verdict", "link_number")
        .annotate(n=Sum("count"))
        .values_list("variant", "verdict", "link_number", "n")
    )
    for variant, verdict, number, n in tallies:
        counts = result.setdefault(variant, VariantCounts())
        human = verdict == Verdict.HUMAN
        if number == OPEN:
            if human:
                counts.human_opens += n
            else:
                counts.machine_opens += n
        elif human:
            counts.human_clicks += n
        else:
            counts.machine_clicks += n
    if issue.tracking_mode == TrackingMode.PER_READER:
        for counts in result.values():
            counts.unique_opens = counts.unique_clicks = 0
        readers = UniqueTally.objects.filter(issue=issue, link_number__in=[OPEN, UniqueTally.ANY_CLICK])
        for variant, number, n in readers.values_list("variant", "link_number", "count"):
            counts = result.setdefault(variant, VariantCounts(unique_opens=0, unique_clicks=0))
            if number == OPEN:
                counts.unique_opens = n
            else:
                counts.unique_clicks = n
    return result
