"""The engagement report of an issue, and a newsletter's last ten issues side by side: plain data for the admin
pages, the CSV export and the API, computed with a handful of grouped queries (none per row, none per link).

What each figure is:
- delivered: messages the receiving server accepted (Delivery sent); bounced hard/soft and complaints: what came
  back about them later (the partial index `delivery_came_back` reads only those rows).
- unsubscribes attributed: readers it was delivered to who unsubscribed from the newsletter within
  ENGAGEMENT_UNSUBSCRIBE_DAYS of the send starting and before its next issue started.
- opens and clicks: every counted hit, human and machine apart (machine: scanners, prefetch, the timing rules;
  opens also list Apple MPP and Gmail's proxy apart). Unique readers only where measured per reader.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Sum
from django.utils import timezone

from engagement.models import OPEN, IssueSnapshot, Link, Tally, UniqueTally, Verdict
from engagement.services.hits import TIMELINE_HOURS
from engagement.services.snapshots import REFRESH_MINUTES, came_back_counts, issue_snapshot, issue_snapshot_take
from engagement.services.stats import VariantCounts, delivery_status_counts, variant_counts
from newsletter.conf import app_settings
from newsletter.models import Delivery, Issue, Newsletter, TrackingMode
from subscribers.models import ConsentEvent


@dataclass
class LinkRow:
    number: int
    url: str
    label: str
    story: str
    human: int = 0
    machine: int = 0
    unique: int | None = None


@dataclass
class StoryRow:
    story: str
    human: int = 0
    machine: int = 0


@dataclass
class HourRow:
    hour: int  # hours since the send started; TIMELINE_HOURS: later
    human_opens: int = 0
    human_clicks: int = 0
    machine: int = 0


@dataclass
class IssueReport:
    issue: Issue
    delivered: int = 0
    failed: int = 0
    pending: int = 0
    bounced_hard: int = 0
    bounced_soft: int = 0
    complaints: int = 0
    unsubscribes: int = 0
    opens: dict[str, int] = field(default_factory=dict)  # by verdict name
    clicks: dict[str, int] = field(default_factory=dict)
    links: list[LinkRow] = field(default_factory=list)
    stories: list[StoryRow] = field(default_factory=list)
    timeline: list[HourRow] = field(default_factory=list)
    variants: dict[int, VariantCounts] = field(default_factory=dict)
    counted_at: datetime | None = None  # the delivery figures' snapshot time; None: counted just now

    @property
    def human_opens(self) -> int:
        return self.opens.get("human", 0)

    @property
    def human_clicks(self) -> int:
        return self.clicks.get("human", 0)

    @property
    def machine_clicks(self) -> int:
        return sum(n for name, n in self.clicks.items() if name != "human")

    @property
    def machine_opens(self) -> int:
        return sum(n for name, n in self.opens.items() if name != "human")

    @property
    def click_rate(self) -> float | None:
        return self.human_clicks / self.delivered if self.delivered else None

    @property
    def machine_share(self) -> float | None:
        total = self.human_clicks + self.machine_clicks
        return self.machine_clicks / total if total else None


VERDICT_NAMES = {Verdict.HUMAN: "human", Verdict.MACHINE: "machine", Verdict.APPLE_MPP: "apple_mpp",
                 Verdict.GOOGLE_PROXY: "google_proxy"}  # fmt: skip


def _delivery_counts(issue: Issue) -> dict[str, int]:
    """Deliveries by status and what came back: from the finished issue's snapshot when there is one (beat keeps
    it fresh), else counted now."""
    snapshot = issue_snapshot(issue)
    if snapshot is not None:
        counts: dict[str, int] = {}
        for status, _variant, n in snapshot.statuses:
            counts[status] = counts.get(status, 0) + n
        return {
            **counts, "hard": snapshot.bounced_hard, "soft": snapshot.bounced_soft, "complaints": snapshot.complaints,
            "unsubscribes": snapshot.unsubscribes, "taken_at": snapshot.taken_at,
        }  # fmt: skip
    counts = {}
    for (status, _variant), n in delivery_status_counts(issue).items():
        counts[status] = counts.get(status, 0) + n
    return {**counts, **came_back_counts(issue), "unsubscribes": issue_unsubscribes(issue), "taken_at": None}


def snapshots_refresh(now=None) -> int:
    """Beat: re-count issues that finished within ENGAGEMENT_SNAPSHOT_DAYS and were not counted in the last few
    minutes (bounces and complaints keep arriving for days). Returns how many were counted."""
    now = now or timezone.now()
    recent = Issue.objects.filter(
        status=Issue.Status.SENT, finished_at__gte=now - timedelta(days=app_settings.ENGAGEMENT_SNAPSHOT_DAYS)
    )
    stale = recent.exclude(
        pk__in=IssueSnapshot.objects.filter(taken_at__gte=now - timedelta(minutes=REFRESH_MINUTES)).values("issue_id")
    )
    done = 0
    for issue in stale:
        issue_snapshot_take(issue, issue_unsubscribes(issue))
        done += 1
    return done


def issue_unsubscribes(issue: Issue) -> int:
    """Unsubscribes attributed to the issue (see the module's docstring)."""
    if issue.started_at is None:
        return 0
    until = issue.started_at + timedelta(days=app_settings.ENGAGEMENT_UNSUBSCRIBE_DAYS)
    later = (
        Issue.objects.filter(newsletter_id=issue.newsletter_id, kind=issue.kind, started_at__gt=issue.started_at)
        .order_by("started_at")
        .values_list("started_at", flat=True)
        .first()
    )
    if later is not None:
        until = min(until, later)
    return (
        ConsentEvent.objects.filter(
            kind=ConsentEvent.Kind.UNSUBSCRIBE,
            newsletter_id=issue.newsletter_id,
            created_at__gte=issue.started_at,
            created_at__lt=until,
        )
        .filter(Exists(Delivery.objects.filter(issue=issue, subscriber_id=OuterRef("subscriber_id"))))
        .values("subscriber_id")
        .distinct()
        .count()
    )


def _link_uniques(issue: Issue) -> dict[int, int]:
    """Distinct readers with a human click, per link (all variants)."""
    rows = UniqueTally.objects.filter(issue=issue, link_number__gt=OPEN).values("link_number").annotate(n=Sum("count"))
    return dict(rows.values_list("link_number", "n"))


def issue_report(issue: Issue) -> IssueReport:
    report = IssueReport(issue=issue)
    counts = _delivery_counts(issue)
    report.delivered = counts.get(Delivery.Status.SENT, 0)
    report.failed = counts.get(Delivery.Status.FAILED, 0)
    report.pending = sum(counts.get(s, 0) for s in ("pending", "sending", "deferred", "held"))
    report.bounced_hard, report.bounced_soft = counts["hard"], counts["soft"]
    report.complaints = counts["complaints"]
    report.unsubscribes = counts["unsubscribes"]
    report.counted_at = counts["taken_at"]
    report.opens = {name: 0 for name in VERDICT_NAMES.values()}
    report.clicks = {"human": 0, "machine": 0}
    by_link: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    hours = {h: HourRow(hour=h) for h in range(TIMELINE_HOURS + 1)}
    rows = (
        Tally.objects.filter(issue=issue)
        .values("link_number", "verdict", "hour")
        .annotate(n=Sum("count"))
        .values_list("link_number", "verdict", "hour", "n")
    )
    for number, verdict, hour, n in rows:
        name = VERDICT_NAMES[verdict]
        human = verdict == Verdict.HUMAN
        row = hours[min(hour, TIMELINE_HOURS)]
        if number == OPEN:
            report.opens[name] += n
            if human:
                row.human_opens += n
        else:
            report.clicks["human" if human else "machine"] += n
            by_link[number][0 if human else 1] += n
            if human:
                row.human_clicks += n
        if not human:
            row.machine += n
    report.timeline = [hours[h] for h in range(TIMELINE_HOURS + 1)]
    uniques = _link_uniques(issue) if issue.tracking_mode == TrackingMode.PER_READER else {}
    stories: dict[str, StoryRow] = {}
    for link in Link.objects.filter(issue=issue).select_related("article").order_by("number"):
        human, machine = by_link.get(link.number, (0, 0))
        story = link.article.headline if link.article else ""
        report.links.append(
            LinkRow(link.number, link.url, link.label, story, human, machine, uniques.get(link.number)
                    if issue.tracking_mode == TrackingMode.PER_READER else None)
        )  # fmt: skip
        if story:
            row = stories.setdefault(story, StoryRow(story))
            row.human += human
            row.machine += machine
    report.stories = sorted(stories.values(), key=lambda s: -s.human)
    report.variants = variant_counts(issue)
    return report


@dataclass
class IssueSummary:
    issue: Issue
    delivered: int
    human_opens: int
    human_clicks: int
    machine_clicks: int
    unsubscribes: int
    complaints: int
    bounces: int

    @property
    def click_rate(self) -> float | None:
        return self.human_clicks / self.delivered if self.delivered else None


def newsletter_overview(newsletter: Newsletter, limit: int = 10) -> list[IssueSummary]:
    """The newsletter's last `limit` issues that were sent (or are sending), oldest first, side by side."""
    issues = list(
        Issue.objects.filter(newsletter=newsletter, kind=Issue.Kind.ISSUE, started_at__isnull=False).order_by(
            "-started_at"
        )[:limit]
    )
    tallies: dict[int, dict[str, int]] = defaultdict(lambda: {"opens": 0, "clicks": 0, "machine": 0})
    for issue_id, number, verdict, n in (
        Tally.objects.filter(issue__in=issues)
        .values("issue_id", "link_number", "verdict")
        .annotate(n=Sum("count"))
        .values_list("issue_id", "link_number", "verdict", "n")
    ):
        if verdict != Verdict.HUMAN:
            if number != OPEN:
                tallies[issue_id]["machine"] += n
        elif number == OPEN:
            tallies[issue_id]["opens"] += n
        else:
            tallies[issue_id]["clicks"] += n
    summaries = []
    for issue in reversed(issues):
        counts = _delivery_counts(issue)
        t = tallies[issue.pk]
        summaries.append(
            IssueSummary(
                issue, counts.get(Delivery.Status.SENT, 0), t["opens"], t["clicks"], t["machine"],
                counts["unsubscribes"], counts["complaints"], counts["hard"] + counts["soft"],
            )
        )  # fmt: skip
    return summaries
