"""What beat runs every few seconds: start due issues, take back work from dead workers, restart stalled sends.

Everything here is derived from PostgreSQL, so it repairs any loss of Redis (queued tasks, results) as well as any
dead worker, and it is safe to run twice at once: each step is a conditional UPDATE that one caller wins.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from newsletter import dispatch
from newsletter.delivery import ledger
from newsletter.delivery.abtest import CountSource, ab_review
from newsletter.delivery.canary import canaries_review
from newsletter.delivery.lifecycle import send_fail, send_finish, send_start
from newsletter.models import Issue, SendRun
from newsletter.services.rendering import RenderError

log = logging.getLogger(__name__)


@dataclass
class RecoveryReport:
    started: int = 0
    leases_requeued: int = 0
    kicked: int = 0
    materialising: int = 0
    finished: int = 0
    render_failed: int = 0
    canaries_decided: int = 0
    ab_decided: int = 0


def issues_recover(now: datetime | None = None, ab_counts: CountSource | None = None) -> RecoveryReport:
    """One recovery pass. Safe to run any number of times, concurrently included. `ab_counts`: where A/B tests
    read their per-variant counts (the engagement app's by default)."""
    now = now or timezone.now()
    report = RecoveryReport()
    start_due(now, report)
    requeue_expired(now, report)
    ledger.deliveries_cancel_open(now=now)
    report.canaries_decided = canaries_review(now)
    report.ab_decided = ab_review(now, ab_counts)
    restart_stalled(now, report)
    return report


def requeue_expired(now: datetime, report: RecoveryReport) -> None:
    """Rows whose lease ran out: their worker died (a live batch renews its lease). Back to pending, and a chain
    is started for each of their issues still sending, so they go out at once rather than when the send's
    heartbeat goes stale (the other chains may be busy elsewhere, or gone with the worker)."""
    issue_ids = ledger.deliveries_expired_issue_ids(now)
    report.leases_requeued = ledger.deliveries_requeue_expired(now)
    if report.leases_requeued:
        for issue_id in Issue.objects.filter(pk__in=issue_ids, status=Issue.Status.SENDING).values_list(
            "id", flat=True
        ):
            dispatch.batches_start(issue_id, chains=1)
            report.kicked += 1


def start_due(now: datetime, report: RecoveryReport) -> None:
    """Scheduled issues whose time has come (exactly once: the start is a locked, conditional transition)."""
    for issue_id in Issue.objects.due(now).values_list("id", flat=True):
        try:
            # Re-checked under the issue's lock: still scheduled, and due (it may have been unscheduled since).
            report.started += send_start(issue_id, scheduled=True)
        except RenderError as exc:
            # Failed, with the reason for the editor, so it does not fail again every 15 seconds.
            send_fail(issue_id, f"The scheduled send did not start: the issue does not render. {exc}")
            report.render_failed += 1
            log.error("issue %s: scheduled send failed, the issue does not render: %s", issue_id, exc)


def restart_stalled(now: datetime, report: RecoveryReport) -> None:
    """Sending issues whose heartbeat is older than a lease: materialise again, restart the chains, or finish."""
    stale = now - ledger.stale_after()
    for issue_id in Issue.objects.filter(status=Issue.Status.SENDING).values_list("id", flat=True):
        run, _ = SendRun.objects.get_or_create(issue_id=issue_id)
        woken = run.wake_at is not None and run.wake_at <= now
        if run.heartbeat_at and run.heartbeat_at > stale and not woken:
            continue  # a batch or a materialise chunk ran within a lease: the send is alive
        if run.materialised_at is None:
            if ledger.run_take_over(run, now):
                dispatch.materialise_later(issue_id)
                report.materialising += 1
            continue
        if ledger.deliveries_claimable_exist(issue_id, now):
            if ledger.run_take_over(run, now):
                dispatch.batches_start(issue_id)
                report.kicked += 1
        elif send_finish(issue_id):
            report.finished += 1
