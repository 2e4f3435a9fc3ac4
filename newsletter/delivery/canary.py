"""Canary sends: a random first share of the list goes alone; when all of it has an outcome the send holds for
the issue's hold time, then continues by itself unless its hard bounces or complaints crossed the newsletter's
thresholds. Then it pauses with the reason written for the editor, who can resume (the rest goes) or cancel.

Every step is a conditional update of the send run, so two recoveries at once decide once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction

from newsletter import dispatch
from newsletter.delivery import ledger
from newsletter.models import Delivery, Issue, SendRun
from subscribers.models import MailEvent

log = logging.getLogger(__name__)

Status = Delivery.Status
STILL_SENDING = (Status.PENDING, Status.SENDING, Status.DEFERRED)


@dataclass(frozen=True)
class CanaryVerdict:
    attempted: int
    hard_bounces: int
    complaints: int
    reason: str  # empty when the canary is healthy

    @property
    def healthy(self) -> bool:
        return not self.reason


def canary_verdict(issue: Issue) -> CanaryVerdict:
    """How the canary went: its hard bounces (refused for good at send time) and complaints, against the
    newsletter's limits."""
    rows = Delivery.objects.filter(issue_id=issue.pk)
    attempted = rows.filter(status__in=[Status.SENT, Status.FAILED]).count()
    hard = rows.filter(status=Status.FAILED, error_code__startswith="5").count()
    complaints = MailEvent.objects.filter(issue_id=issue.pk, kind=MailEvent.Kind.COMPLAINT).count()
    newsletter = issue.newsletter
    reasons = []
    for count, limit, what in (
        (hard, newsletter.guard_hard_bounce_percent, "hard-bounced"),
        (complaints, newsletter.guard_complaint_percent, "complained"),
    ):
        share = 100 * count / attempted if attempted else 0.0
        if share > limit:
            reasons.append(f"{count} of the first {attempted} readers {what} ({share:.1f} %; the limit is {limit:g} %)")
    reason = ("Canary held the send: " + "; ".join(reasons) + ".") if reasons else ""
    return CanaryVerdict(attempted, hard, complaints, reason)


def canaries_review(now: datetime) -> int:
    """Recovery's step for canary sends: start the hold once the canary is done, decide when the hold is over.
    Returns how many sends were decided (released or paused) by this call."""
    decided = 0
    runs = SendRun.objects.filter(
        canary_size__isnull=False, canary_decided_at__isnull=True, issue__status=Issue.Status.SENDING
    ).select_related("issue__newsletter")
    for run in runs:
        issue = run.issue
        if Delivery.objects.filter(issue_id=issue.pk, status__in=STILL_SENDING).exists():
            continue  # the canary is still going out
        if run.hold_until is None:
            run.hold_until = now + timedelta(minutes=issue.canary_hold_minutes)
            SendRun.objects.filter(pk=run.pk, hold_until__isnull=True).update(hold_until=run.hold_until)
            log.info("issue %s: canary of %s done, holding until %s", issue.pk, run.canary_size, run.hold_until)
        if now < run.hold_until:
            continue
        decided += canary_decide(issue, now)
    return decided


def canary_decide(issue: Issue, now: datetime) -> bool:
    """Release the held rows or pause with the reason, exactly once. Returns whether this call decided."""
    with transaction.atomic():
        if not SendRun.objects.filter(pk=issue.pk, canary_decided_at__isnull=True).update(canary_decided_at=now):
            return False
        verdict = canary_verdict(issue)
        if not verdict.healthy:
            if issue.transition_to(Issue.Status.PAUSED, status_reason=verdict.reason):
                log.warning("issue %s: %s", issue.pk, verdict.reason)
            return True
        released = ledger.deliveries_release_held(issue.pk)
        dispatch.batches_start(issue.pk)
    log.info("issue %s: canary healthy (%s attempted), %s more released", issue.pk, verdict.attempted, released)
    return True
