"""A send's life: start (freeze and materialise), pause, resume, cancel, reopen for those who did not get it, finish.

Each is a conditional transition of the issue (`Issue.transition_to`) plus the ledger writes that go with it, in
one transaction, and returns whether this call made the change: the editor's controls (services/sending.py) turn
False into a message, recovery and the tasks simply move on.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from api.webhooks.outbox import events_record, issue_payload
from engagement.services.links import issue_links_freeze
from newsletter import dispatch
from newsletter.delivery import ledger
from newsletter.delivery.segments import segment_rules
from newsletter.models import Issue, SendRun
from newsletter.services.rendering import issue_freeze

log = logging.getLogger(__name__)


def send_start(issue_id: int, user=None, scheduled: bool = False) -> bool:
    """Move a draft or scheduled issue to sending (`scheduled`: only a scheduled issue that is due, re-checked under
    the lock, as beat's recovery starts it), freezing its render and its sender identity, exactly once: the row
    lock plus the conditional transition mean of two concurrent callers (two beats, a double click) only one starts
    it. Raises RenderError when the issue does not render; nothing changes then. Returns whether this call started
    it."""
    with transaction.atomic():
        issue = Issue.objects.select_for_update().select_related("newsletter").filter(pk=issue_id).first()
        now = timezone.now()
        if issue is None or issue.status not in (Issue.Status.DRAFT, Issue.Status.SCHEDULED, Issue.Status.FAILED):
            return False
        if scheduled and (issue.status != Issue.Status.SCHEDULED or issue.scheduled_at > now):
            return False
        issue_freeze(issue)  # raises RenderError: the transaction rolls back, the issue stays as it was
        tracking = issue_links_freeze(issue)  # the newsletter's tracking mode is this issue's from now on
        started = issue.transition_to(
            Issue.Status.SENDING,
            frozen_subject=issue.frozen_subject,
            frozen_html=issue.frozen_html,
            frozen_text=issue.frozen_text,
            frozen_at=issue.frozen_at,
            frozen_sender=sender_identity(issue),
            status_reason="",
            started_at=now,
            finished_at=None,
            audience=segment_rules(issue.segment, as_of=now),  # fixed now: later edits and taggings change nothing
            **tracking,
        )
        if not started:
            return False
        ledger.run_open(issue, user, now)
        events_record("issue.started", issue_payload(issue))
        dispatch.materialise_later(issue.pk)
    log.info("issue %s: sending started", issue_id)
    return True


def sender_identity(issue: Issue) -> dict[str, str]:
    """Who the issue is from, as its messages say it, frozen with the render so an edit mid-send mixes nothing."""
    newsletter = issue.newsletter
    return {
        "from_name": newsletter.from_name,
        "from_email": newsletter.from_email,
        "reply_to": newsletter.reply_to,
        "postal_address": newsletter.postal_address,
        "mail_domain": settings.MAIL_DOMAIN,
    }


def send_pause(issue: Issue, reason: str = "") -> bool:
    """Stop sending within a second: running batches see the status, give back their unsent rows and end. The
    reason is shown to the editor."""
    with transaction.atomic():  # the webhook event is written with the transition, or neither is
        if not issue.transition_to(Issue.Status.PAUSED, status_reason=reason[:1000]):
            return False
        events_record("issue.paused", issue_payload(issue, reason=reason))
    log.info("issue %s: paused%s", issue.pk, f" ({reason})" if reason else "")
    return True


def send_resume(issue: Issue) -> bool:
    """Carry on where the send stopped; nobody who got it gets it again. After a canary held the send, resuming
    is the editor's decision that the rest may go."""
    with transaction.atomic():
        if not issue.transition_to(Issue.Status.SENDING, from_status=Issue.Status.PAUSED, status_reason=""):
            return False
        ledger.run_beat(issue.pk)
        run = SendRun.objects.filter(pk=issue.pk).first()
        if run and run.canary_decided_at is not None:
            ledger.deliveries_release_held(issue.pk)
        if run and run.materialised_at is None:
            dispatch.materialise_later(issue.pk)
        else:
            dispatch.batches_start(issue.pk)
    return True


def send_cancel(issue: Issue) -> int | None:
    """Cancel a scheduled, sending or paused issue for good: rows not yet sent become skipped (running batches
    drop theirs within a second). Returns how many rows were skipped, None when the issue could not be cancelled."""
    with transaction.atomic():
        if not issue.transition_to(Issue.Status.CANCELLED, finished_at=timezone.now()):
            return None
        return ledger.deliveries_cancel_open([issue.pk])


def send_reopen_failed(issue: Issue) -> int | None:
    """After a send ended, send again to those whose delivery failed (retries given up included), once the cause
    is fixed. Who got it is never sent it again; suppressed or unsubscribed people are skipped at claim. Returns
    how many rows were reopened, None when the issue was not sent (or changed meanwhile)."""
    with transaction.atomic():
        if not issue.transition_to(Issue.Status.SENDING, from_status=Issue.Status.SENT, finished_at=None):
            return None
        count = ledger.deliveries_reopen_failed(issue.pk)
        ledger.run_count_resend(issue.pk)
        dispatch.batches_start(issue.pk)
    return count


def send_fail(issue_id: int, reason: str) -> bool:
    """A scheduled issue that cannot start (it no longer renders): failed, with the reason for the editor."""
    failed = Issue(pk=issue_id).transition_to(Issue.Status.FAILED, status_reason=reason[:1000])
    if failed:
        log.error("issue %s: failed: %s", issue_id, reason)
    return failed


def send_finish(issue_id: int) -> bool:
    """Mark the issue sent when every recipient has an outcome. Safe to call any time, any number of times.
    A welcome email never finishes: it waits for the next reader to confirm."""
    run = SendRun.objects.filter(pk=issue_id).select_related("issue").first()
    if run is None or run.materialised_at is None or run.issue.kind == Issue.Kind.WELCOME:
        return False
    if ledger.deliveries_open_exist(issue_id):
        return False
    with transaction.atomic():  # the webhook event is written with the transition, or neither is
        finished = Issue(pk=issue_id).transition_to(Issue.Status.SENT, finished_at=timezone.now())
        if finished:
            events_record("issue.sent", issue_payload(Issue.objects.select_related("newsletter").get(pk=issue_id)))
    if finished:
        log.info("issue %s: sent", issue_id)
    return finished


# --- welcome emails -----------------------------------------------------------------------------------------------


def welcome_start(issue_id: int, user=None) -> bool:
    """Make this draft the newsletter's welcome email: frozen now, "sending" from now on, with no recipients until
    readers confirm (welcome_add). Whatever welcome it replaces is paused first. Raises RenderError."""
    with transaction.atomic():
        issue = Issue.objects.select_for_update().select_related("newsletter").filter(pk=issue_id).first()
        if issue is None or issue.kind != Issue.Kind.WELCOME or issue.status != Issue.Status.DRAFT:
            return False
        issue_freeze(issue)
        tracking = issue_links_freeze(issue)
        now = timezone.now()
        for live in Issue.objects.filter(newsletter=issue.newsletter, kind=Issue.Kind.WELCOME, status="sending"):
            live.transition_to(Issue.Status.PAUSED)
        started = issue.transition_to(
            Issue.Status.SENDING,
            frozen_subject=issue.frozen_subject,
            frozen_html=issue.frozen_html,
            frozen_text=issue.frozen_text,
            frozen_at=issue.frozen_at,
            started_at=now,
            finished_at=None,
            **tracking,
        )
        if started:
            ledger.run_open(issue, user, now)
            ledger.run_materialised(issue.pk, now)  # nobody is added in bulk: rows come one confirmation at a time
    return started


def welcome_add(subscriber_id: int, newsletter_id: int) -> bool:
    """Queue the newsletter's welcome email for a reader who just confirmed it, in the caller's transaction.
    Exactly once per reader and welcome email, however often the confirmation is processed. Returns whether a
    row was added."""
    welcome_id = (
        Issue.objects.filter(newsletter_id=newsletter_id, kind=Issue.Kind.WELCOME, status=Issue.Status.SENDING)
        .values_list("id", flat=True)
        .first()
    )
    if welcome_id is None or not ledger.delivery_add(welcome_id, subscriber_id):
        return False
    dispatch.welcome_batch(welcome_id)
    return True
