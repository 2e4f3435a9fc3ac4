"""What beat runs every few seconds: start due issues, take back work from dead workers, restart stalled sends.

Everything here is derived from PostgreSQL, so it repairs any loss of Redis (queued tasks, results) as well as any
dead worker, and it is safe to run twice at once: each step is a conditional UPDATE that one caller wins.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from newsletter.models import Delivery, Issue, SendRun
from newsletter.services.delivery import lease_seconds
from newsletter.services.rendering import RenderError
from newsletter.services.sending import _materialise_later, deliveries_kick, issue_finish, issue_start_send

log = logging.getLogger(__name__)


@dataclass
class RecoveryReport:
    started: int = 0
    leases_requeued: int = 0
    kicked: int = 0
    materialising: int = 0
    finished: int = 0
    render_failed: int = 0


def issues_recover(now: datetime | None = None) -> RecoveryReport:
    """One recovery pass. Safe to run any number of times, concurrently included."""
    now = now or timezone.now()
    report = RecoveryReport()
    for issue_id in Issue.objects.due(now).values_list("id", flat=True):
        try:
            report.started += issue_start_send(issue_id)
        except RenderError as exc:
            # Back to draft so it does not fail again every 15 seconds; the editor sees it unscheduled.
            Issue(pk=issue_id).transition_to(Issue.Status.DRAFT)
            report.render_failed += 1
            log.error("issue %s: scheduled send blocked, the issue does not render: %s", issue_id, exc)

    # A worker died holding these rows: the message it had on the wire may have gone (the one possible duplicate),
    # the rest never did. Back to pending for anyone to claim.
    report.leases_requeued = Delivery.objects.lease_expired(now).update(
        status=Delivery.Status.PENDING, lease_until=None, claim_token=None, updated_at=now
    )
    # By issue id (IN a subquery), not by a join: the join compiles to `id IN (SELECT … JOIN …)`, which PostgreSQL
    # plans as a scan of every pending and deferred row of the ledger; this reads only the cancelled issues' rows.
    cancelled = Issue.objects.filter(status=Issue.Status.CANCELLED).values("id")
    Delivery.objects.filter(
        issue_id__in=cancelled, status__in=[Delivery.Status.PENDING, Delivery.Status.DEFERRED]
    ).update(status=Delivery.Status.SKIPPED, error_text="cancelled", updated_at=now)

    stale = now - timedelta(seconds=lease_seconds())
    for issue_id in Issue.objects.filter(status=Issue.Status.SENDING).values_list("id", flat=True):
        run, _ = SendRun.objects.get_or_create(issue_id=issue_id)
        if run.batch_started_at and run.batch_started_at > stale:
            continue  # a batch or a materialise chunk started within a lease: the send is alive
        if run.materialised_at is None:
            if _take_over(run, now):
                _materialise_later(issue_id)
                report.materialising += 1
            continue
        claimable = Delivery.objects.filter(issue_id=issue_id).filter(
            Q(status=Delivery.Status.PENDING) | Q(status=Delivery.Status.DEFERRED, next_attempt_at__lte=now)
        )
        if claimable.exists():
            if _take_over(run, now):
                deliveries_kick(issue_id)
                report.kicked += 1
        elif issue_finish(issue_id):
            report.finished += 1
    return report


def _take_over(run: SendRun, now: datetime) -> bool:
    """Claim the right to restart this send: of two concurrent recoveries only one moves the mark."""
    with transaction.atomic():
        seen = run.batch_started_at
        mark = Q(batch_started_at__isnull=True) if seen is None else Q(batch_started_at=seen)
        return bool(SendRun.objects.filter(mark, pk=run.pk).update(batch_started_at=now))
