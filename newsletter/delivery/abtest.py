"""A/B subject tests: a random test share of the list (e.g. 20 %), split evenly, gets one subject each
(Delivery.variant 1, 2 …); every other row waits `held`. Once the test share has its outcomes, the send measures
for the issue's wait, then the subject with the best human click rate (human opens where no click was counted)
goes to the rest by itself, and the figures it was chosen on are kept for the report, which says plainly when
the difference may be chance (a two-proportion z-test, winner against each other variant, at the 5 % level).

Where the counts come from is a parameter (`CountSource`: issue → per-variant counts); by default it is the
engagement app's `variant_counts` (its aggregate tallies, which every tracking mode but "off" keeps, with the
classifier's human/machine verdict), so scanners and image proxies never pick a winner. A rate is human clicks per
delivered message (capped at one per message, so it stays a proportion for the test). Every step is a conditional
update of the send run, so two recoveries at once decide once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from django.db import transaction

from automations.services.stats import rate, two_proportion_test
from engagement.services.stats import variant_counts
from newsletter import dispatch
from newsletter.delivery import ledger
from newsletter.models import Delivery, Issue, SendRun

log = logging.getLogger(__name__)

Status = Delivery.Status
STILL_SENDING = (Status.PENDING, Status.SENDING, Status.DEFERRED)


class Counts(Protocol):
    """What the choice needs of a variant: readers it reached and what humans did (engagement's VariantCounts)."""

    delivered: int
    human_clicks: int
    human_opens: int


CountSource = Callable[[Issue], Mapping[int, Counts]]


def letter(variant: int) -> str:
    return chr(ord("A") + variant - 1) if variant >= 1 else "–"


@dataclass(frozen=True)
class VariantFigures:
    variant: int
    subject: str
    delivered: int
    successes: int
    rate: float


@dataclass(frozen=True)
class Choice:
    winner: int
    metric: str  # "clicks", "opens", or "" when nothing was measured
    variants: list[VariantFigures] = field(default_factory=list)
    p_value: float = 1.0  # the winner against its closest rival (the largest p of its comparisons)
    significant: bool = False
    summary: str = ""

    def as_data(self) -> dict:
        return asdict(self)


def ab_choose(counts: Mapping[int, Counts], subjects: list[str]) -> Choice:
    """The winner among variants 1…len(subjects): the best human click rate, or open rate where no human click
    was counted at all; ties go to the earlier subject. Nothing measured: the first subject, said so."""
    numbers = range(1, len(subjects) + 1)
    delivered = {v: getattr(counts.get(v), "delivered", 0) for v in numbers}
    clicks = {v: min(getattr(counts.get(v), "human_clicks", 0), delivered[v]) for v in numbers}
    opens = {v: min(getattr(counts.get(v), "human_opens", 0), delivered[v]) for v in numbers}
    metric, successes = ("clicks", clicks) if any(clicks.values()) else ("opens", opens)
    if not any(successes.values()):
        metric = ""
    figures = [
        VariantFigures(v, subjects[v - 1], delivered[v], successes[v], rate(successes[v], delivered[v]))
        for v in numbers
    ]
    if not metric:
        summary = (
            f"Nothing was measured (no human click or open), so subject {letter(1)} went to the rest; "
            "no subject can be said to be better."
        )
        return Choice(1, "", figures, 1.0, False, summary)
    best = max(figures, key=lambda f: (f.rate, -f.variant))
    rivals = [f for f in figures if f.variant != best.variant]
    p_value = max(two_proportion_test(best.successes, best.delivered, r.successes, r.delivered).p_value for r in rivals)
    significant = p_value < 0.05
    what = "human click rate" if metric == "clicks" else "human open rate"
    others = ", ".join(f"{r.rate:.1%} ({letter(r.variant)})" for r in rivals)
    if significant:
        summary = (
            f"Subject {letter(best.variant)} won with a {what} of {best.rate:.1%} against {others}; "
            f"the difference is significant (p = {p_value:.3f})."
        )
    else:
        summary = (
            f"Subject {letter(best.variant)} had the best {what}, {best.rate:.1%} against {others}, but the "
            f"difference is not significant (p = {p_value:.2f}): it may well be chance. "
            f"{letter(best.variant)} went to the rest."
        )
    return Choice(best.variant, metric, figures, p_value, significant, summary)


def ab_review(now: datetime, counts: CountSource | None = None) -> int:
    """Recovery's step for A/B tests: start the wait once the test share is sent, decide when it is over.
    Returns how many tests were decided by this call."""
    decided = 0
    runs = SendRun.objects.filter(
        ab_test_size__isnull=False, ab_decided_at__isnull=True, issue__status=Issue.Status.SENDING
    ).select_related("issue")
    for run in runs:
        issue = run.issue
        if Delivery.objects.filter(issue_id=issue.pk, status__in=STILL_SENDING).exists():
            continue  # the test share is still going out
        if run.ab_wait_until is None:
            run.ab_wait_until = now + timedelta(minutes=issue.ab_wait_minutes)
            SendRun.objects.filter(pk=run.pk, ab_wait_until__isnull=True).update(ab_wait_until=run.ab_wait_until)
            log.info("issue %s: A/B test of %s sent, measuring until %s", issue.pk, run.ab_test_size, run.ab_wait_until)
        if now < run.ab_wait_until:
            continue
        decided += ab_decide(issue, now, counts or variant_counts)
    return decided


def ab_decide(issue: Issue, now: datetime, counts: CountSource) -> bool:
    """Choose the winner from the counts and release the rest with its subject, exactly once."""
    with transaction.atomic():
        if not SendRun.objects.filter(pk=issue.pk, ab_decided_at__isnull=True).update(ab_decided_at=now):
            return False
        choice = ab_choose(counts(issue), issue.ab_subjects)
        SendRun.objects.filter(pk=issue.pk).update(ab_winner=choice.winner, ab_result=choice.as_data())
        released = ledger.deliveries_release_held(issue.pk, variant=choice.winner)
        dispatch.batches_start(issue.pk)
    log.info("issue %s: A/B winner %s, %s more released: %s", issue.pk, choice.winner, released, choice.summary)
    return True


def ab_report(issue: Issue, counts: CountSource | None = None) -> dict | None:
    """Where an A/B test stands, for the editor: each variant's subject and figures now, and once decided the
    winner with the sentence saying whether the difference is significant. JSON-ready; None without a test."""
    subjects = issue.ab_subjects
    if not subjects:
        return None
    run = SendRun.objects.filter(pk=issue.pk).first()
    now_choice = ab_choose((counts or variant_counts)(issue), subjects)
    if run is None or run.ab_test_size is None:
        state = "picking" if run else "draft"
    elif run.ab_decided_at:
        state = "decided"
    else:
        state = "measuring" if run.ab_wait_until else "testing"
    decided = run.ab_result if run and run.ab_decided_at else {}
    return {
        "state": state,
        "test_size": run.ab_test_size if run else None,
        "percent": issue.ab_test_percent,
        "wait_minutes": issue.ab_wait_minutes,
        "wait_until": run.ab_wait_until.isoformat() if run and run.ab_wait_until else None,
        "winner": run.ab_winner if run else None,
        "winner_letter": letter(run.ab_winner) if run and run.ab_winner else "",
        "summary": decided.get("summary") or now_choice.summary,
        "significant": decided.get("significant", now_choice.significant),
        "metric": decided.get("metric", now_choice.metric),
        "variants": [
            {**asdict(f), "letter": letter(f.variant), "rate_percent": round(100 * f.rate, 1)}
            for f in now_choice.variants
        ],
    }
