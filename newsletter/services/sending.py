"""Sending an issue, as the editor sees it: send now, schedule, pause, resume, cancel, test, resend to missing,
and progress. Admin and the `send_issue` command call these; each says why in a SendError when it cannot be done.

The send itself is the delivery core's (newsletter/delivery/): these controls call its public functions, which
own every Delivery and SendRun write. A send is materialised rows, then chains of short batch tasks that claim and
send them (SEND_CHAINS chains per issue, so all worker processes take part).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Count, Q
from django.utils import timezone

from newsletter import delivery, dispatch
from newsletter.models import Delivery, Issue, SendRun, WorkerHeartbeat
from newsletter.services.rendering import RenderError, issue_render, issue_rendered

log = logging.getLogger(__name__)

MAX_TEST_ADDRESSES = 5
# Beat asks every worker for a heartbeat every 30 s: none for a minute means no worker is running.
WORKER_SEEN_WITHIN = timedelta(minutes=1)


class SendError(Exception):
    """A send control that cannot be done now; the message says why, for the editor."""


# --- counts -----------------------------------------------------------------------------------------------------


def issue_recipient_count(issue: Issue) -> int:
    """Who the issue goes (or went) to: its deliveries once materialised, else the newsletter's mailable list."""
    run = SendRun.objects.filter(pk=issue.pk).first()
    if run and run.materialised_at:
        return Delivery.objects.filter(issue_id=issue.pk).count()
    return delivery.mailable_subscribers(issue.newsletter_id, delivery.issue_rules(issue)).count()


# --- start, schedule, controls ----------------------------------------------------------------------------------


def issue_send_now(issue: Issue, user=None) -> None:
    """Send a draft (or a scheduled issue, now instead of later). Raises SendError with the reason otherwise."""
    _not_a_welcome(issue)
    if issue.status not in (Issue.Status.DRAFT, Issue.Status.SCHEDULED, Issue.Status.FAILED):
        raise SendError(f"This issue is {issue.get_status_display().lower()}; only a draft, a scheduled or a "
                        "failed issue can be sent.")  # fmt: skip
    try:
        started = delivery.send_start(issue.pk, user=user)
    except RenderError as exc:
        raise SendError(f"The issue cannot be sent because it does not render. {exc}") from exc
    if not started:
        raise SendError("Someone else started or changed this issue just now; reload the page.")
    issue.refresh_from_db()


def issue_schedule(issue: Issue, when: datetime, user=None) -> None:
    """Schedule a draft for `when` (aware, in the future). Beat's recovery task starts it when due. The render is
    checked now so a broken template is found at scheduling time, not at 6 a.m."""
    _not_a_welcome(issue)
    if timezone.is_naive(when):
        raise SendError("The scheduled time needs a time zone.")
    if when <= timezone.now():
        raise SendError(f"The scheduled time {when:%Y-%m-%d %H:%M %Z} is in the past; choose a later time.")
    if issue.status not in (Issue.Status.DRAFT, Issue.Status.SCHEDULED):
        raise SendError(f"This issue is {issue.get_status_display().lower()}; only a draft can be scheduled.")
    try:
        issue_render(issue)
    except RenderError as exc:
        raise SendError(f"The issue cannot be scheduled because it does not render. {exc}") from exc
    if issue.status == Issue.Status.SCHEDULED:
        changed = Issue.objects.filter(pk=issue.pk, status=Issue.Status.SCHEDULED).update(
            scheduled_at=when, updated_at=timezone.now()
        )
    else:
        changed = issue.transition_to(Issue.Status.SCHEDULED, scheduled_at=when)
    if not changed:
        raise SendError("The issue changed just now; reload the page.")
    issue.refresh_from_db()


def issue_unschedule(issue: Issue) -> None:
    """Back to draft, keeping nothing scheduled."""
    if not issue.transition_to(Issue.Status.DRAFT, scheduled_at=None):
        raise SendError("Only a scheduled issue can be unscheduled.")


def issue_pause(issue: Issue, reason: str = "") -> None:
    """Stop sending within a second: running batches see the status, give back their unsent rows and end."""
    if not delivery.send_pause(issue, reason):
        raise SendError("Only an issue that is sending can be paused.")


def issue_resume(issue: Issue) -> None:
    """Carry on where the send stopped; nobody who got it gets it again."""
    if not delivery.send_resume(issue):
        raise SendError("Only a paused issue can be resumed.")


def issue_cancel(issue: Issue) -> int:
    """Cancel a scheduled, sending or paused issue for good. Rows not yet sent become skipped. Returns how many."""
    skipped = delivery.send_cancel(issue)
    if skipped is None:
        raise SendError("Only a scheduled, sending or paused issue can be cancelled.")
    return skipped


def issue_resend_missing(issue: Issue, user=None) -> int:
    """After a send ended, send again to those who did not get it (failed, including retries given up), once the
    cause is fixed. Who got it is never sent it again; suppressed or unsubscribed people are skipped at claim."""
    if issue.status != Issue.Status.SENT:
        raise SendError("Resending is possible once the send has ended.")
    if not Delivery.objects.filter(issue_id=issue.pk, status=Delivery.Status.FAILED).exists():
        raise SendError("Everybody got this issue; there is nobody to resend to.")
    count = delivery.send_reopen_failed(issue)
    if count is None:
        raise SendError("The issue changed just now; reload the page.")
    return count


# --- welcome emails -----------------------------------------------------------------------------------------------


def _not_a_welcome(issue: Issue) -> None:
    if issue.kind == Issue.Kind.WELCOME:
        raise SendError("This is a welcome email: it goes to each reader when they confirm. Turn it on instead.")


def issue_welcome_start(issue: Issue, user=None) -> None:
    """Turn this draft on as its newsletter's welcome email (replacing the one in use). Raises SendError."""
    if issue.kind != Issue.Kind.WELCOME:
        raise SendError("Only an issue of the kind “Welcome email” can be turned on as the welcome email.")
    if issue.status != Issue.Status.DRAFT:
        raise SendError("Only a draft can be turned on; duplicate this welcome email to change it.")
    try:
        started = delivery.welcome_start(issue.pk, user=user)
    except RenderError as exc:
        raise SendError(f"The welcome email does not render. {exc}") from exc
    if not started:
        raise SendError("The issue changed just now; reload the page.")
    issue.refresh_from_db()


# --- progress ---------------------------------------------------------------------------------------------------


def issue_progress(issue: Issue) -> dict:
    """Counts by delivery state (from the rows, not from counters), rate (messages per second over the last few
    seconds, or since the start) and ETA. JSON-ready."""
    issue.refresh_from_db(fields=["status", "status_reason", "started_at", "finished_at"])
    counts = {status: 0 for status in Delivery.Status.values}
    for status, n in Delivery.objects.filter(issue_id=issue.pk).values_list("status").annotate(n=Count("id")):
        counts[status] = n
    # What came back after sending (bounces, complaints): part of "sent", counted beside it.
    counts.update(
        Delivery.objects.filter(issue_id=issue.pk).aggregate(
            bounced=Count("id", filter=Q(bounce_kind=Delivery.BounceKind.HARD)),
            soft_bounced=Count("id", filter=Q(bounce_kind=Delivery.BounceKind.SOFT)),
            complained=Count("id", filter=Q(complained_at__isnull=False)),
            # A send window: deferred rows never attempted are waiting for the reader's local time.
            waiting_local_time=Count("id", filter=Q(status=Delivery.Status.DEFERRED, attempts=0)),
        )
    )
    run = SendRun.objects.filter(pk=issue.pk).first()
    materialised = bool(run and run.materialised_at)
    total = sum(counts[status] for status in Delivery.Status.values)
    if not materialised and issue.status in (Issue.Status.SENDING, Issue.Status.PAUSED, Issue.Status.SCHEDULED):
        total = max(total, delivery.mailable_subscribers(issue.newsletter_id, delivery.issue_rules(issue)).count())
    done = counts["sent"] + counts["failed"] + counts["skipped"]
    remaining = max(0, total - done)
    rate = _rate(issue, counts["sent"])
    eta = round(remaining / rate) if rate > 0 and issue.status == Issue.Status.SENDING else None
    return {
        "issue": issue.pk,
        "status": issue.status,
        "status_display": issue.get_status_display(),
        "total": total,
        "counts": counts,
        "done": done,
        "remaining": remaining,
        "percent": round(100 * done / total, 1) if total else (100.0 if issue.status == Issue.Status.SENT else 0.0),
        "rate": round(rate, 1),
        "eta_seconds": eta,
        "materialised": materialised,
        "started_at": issue.started_at.isoformat() if issue.started_at else None,
        "finished_at": issue.finished_at.isoformat() if issue.finished_at else None,
        "finished": issue.status in (Issue.Status.SENT, Issue.Status.CANCELLED, Issue.Status.FAILED),
        "status_reason": issue.status_reason,
        "workers_seen": workers_seen(),
        "canary": _canary(issue, run),
        "local_time": _local_time(issue, counts["waiting_local_time"]),
        "ab": delivery.ab_report(issue),
    }


def _local_time(issue: Issue, waiting: int) -> dict | None:
    """A send in readers' local time: how many wait for it, and when the next of them is due."""
    if not issue.has_send_window:
        return None
    rows = Delivery.objects.filter(issue_id=issue.pk, status=Delivery.Status.DEFERRED, attempts=0)
    next_at = rows.order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first() if waiting else None
    return {
        "waiting": waiting,
        "next_at": next_at.isoformat() if next_at else None,
        "local_time": issue.local_time.strftime("%H:%M") if issue.local_time else None,
        "window": [issue.window_start.strftime("%H:%M"), issue.window_end.strftime("%H:%M")]
        if issue.window_start
        else None,
    }


def _canary(issue: Issue, run: SendRun | None) -> dict | None:
    """Where a canary send stands, for the editor: how many went first, the hold, the decision."""
    if not issue.canary_percent:
        return None
    size = run.canary_size if run else None
    if size is None:
        state = "picking"
    elif run.canary_decided_at:
        state = "held" if issue.status == Issue.Status.PAUSED and issue.status_reason else "released"
    else:
        state = "holding" if run.hold_until else "sending"
    return {
        "state": state,
        "size": size,
        "percent": issue.canary_percent,
        "hold_until": run.hold_until.isoformat() if run and run.hold_until else None,
        "limits": {
            "hard_bounce_percent": issue.newsletter.guard_hard_bounce_percent,
            "complaint_percent": issue.newsletter.guard_complaint_percent,
        },
    }


def workers_seen(within: timedelta = WORKER_SEEN_WITHIN) -> bool:
    """Whether any Celery worker answered beat's heartbeat lately: without one, a send waits."""
    return WorkerHeartbeat.objects.filter(seen_at__gte=timezone.now() - within).exists()


def _rate(issue: Issue, sent: int) -> float:
    """Current rate from the previous progress sample (kept in the cache), else the average since the start."""
    now = time.time()
    key = f"masthead:progress:{issue.pk}"
    sample = cache.get(key)
    if sample and now - sample[0] >= 1.0:
        rate = max(0.0, (sent - sample[1]) / (now - sample[0]))
        cache.set(key, (now, sent, rate), 600)
        return rate
    if sample:
        return sample[2]
    cache.set(key, (now, sent, 0.0), 600)
    if issue.status == Issue.Status.SENDING and issue.started_at:
        elapsed = (timezone.now() - issue.started_at).total_seconds()
        return sent / elapsed if elapsed > 0 else 0.0
    return 0.0


# --- test sends -------------------------------------------------------------------------------------------------


def test_addresses_parse(raw: str | list[str]) -> list[str]:
    """Split, validate and de-duplicate test addresses. Raises SendError naming each bad one."""
    items = raw if isinstance(raw, list) else raw.replace(";", ",").replace("\n", ",").split(",")
    addresses, bad = [], []
    for item in (i.strip() for i in items):
        if not item:
            continue
        try:
            validate_email(item)
            delivery.wire_address(item)
        except (ValidationError, delivery.AddressError):
            bad.append(item)
            continue
        if item.lower() not in (a.lower() for a in addresses):
            addresses.append(item)
    if bad:
        raise SendError(f"Not a valid email address: {', '.join(bad)}.")
    if not addresses:
        raise SendError("Give at least one address to send the test to.")
    if len(addresses) > MAX_TEST_ADDRESSES:
        raise SendError(f"A test goes to at most {MAX_TEST_ADDRESSES} addresses; you gave {len(addresses)}.")
    return addresses


def issue_send_test(issue: Issue, addresses: list[str], user=None) -> list[str]:
    """Queue a test send of the issue as it renders now (or as frozen, once sending) on the priority queue,
    subject marked [TEST], links that unsubscribe nobody. Raises SendError for bad addresses or a broken render."""
    clean = test_addresses_parse(addresses)
    try:
        issue_rendered(issue)
    except RenderError as exc:
        raise SendError(f"The issue does not render, so no test was sent. {exc}") from exc
    dispatch.test_send_later(issue.pk, clean)
    log.info("issue %s: test send to %d address(es) queued by %s", issue.pk, len(clean), user or "system")
    return clean


__all__ = [
    "SendError",
    "issue_cancel",
    "issue_pause",
    "issue_progress",
    "issue_recipient_count",
    "issue_resend_missing",
    "issue_resume",
    "issue_schedule",
    "issue_send_now",
    "issue_send_test",
    "issue_unschedule",
]
