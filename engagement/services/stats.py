"""Figures per variant of an issue, for the report and for the A/B subject test built on top of it.

`variant_counts(issue)` answers from aggregate Tally rows (every hit, whatever the mode) and, for distinct
readers, from per-reader events plus what retention rolled up; "unique" is None where it cannot be known (an
aggregate-mode issue measures no reader, so it has no distinct count by design).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Sum

from engagement.models import OPEN, Event, Tally, UniqueRollup, Verdict
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


def variant_counts(issue: Issue) -> dict[int, VariantCounts]:
    """Per variant (0 without an A/B test): delivered, human and machine opens and clicks, unique readers where
    known. Every variant that has a delivery is present."""
    result: dict[int, VariantCounts] = {}
    delivered = (
        Delivery.objects.filter(issue=issue, status=Delivery.Status.SENT)
        .values("variant")
        .annotate(n=Count("id"))
        .values_list("variant", "n")
    )
    for variant, n in delivered:
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
        humans = Event.objects.filter(issue=issue, verdict=Verdict.HUMAN)
        for variant, n in (
            humans.filter(link_number=OPEN)
            .values("variant")
            .annotate(n=Count("delivery_id", distinct=True))
            .values_list("variant", "n")
        ):
            result.setdefault(variant, VariantCounts(unique_opens=0, unique_clicks=0)).unique_opens = n
        for variant, n in (
            humans.exclude(link_number=OPEN)
            .values("variant")
            .annotate(n=Count("delivery_id", distinct=True))
            .values_list("variant", "n")
        ):
            result.setdefault(variant, VariantCounts(unique_opens=0, unique_clicks=0)).unique_clicks = n
        for rollup in UniqueRollup.objects.filter(issue=issue):
            counts = result.setdefault(rollup.variant, VariantCounts(unique_opens=0, unique_clicks=0))
            counts.unique_opens = (counts.unique_opens or 0) + rollup.opens
            counts.unique_clicks = (counts.unique_clicks or 0) + rollup.clicks
    return result
