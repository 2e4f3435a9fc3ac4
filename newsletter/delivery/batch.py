"""One batch of one issue, as named steps:

    claim → open the transport → for each recipient: check for a stop, throttle, personalise, sign, send, record
    → close → release what was not attempted

A refusal about one reader fails that reader. A refusal that is about us (our sender, our ESP account) pauses the
issue with the reason at once, and so do REFUSAL_STREAK refusals in a row of the message itself (every message
refused at DATA: a line too long, a policy on the content): the readers concerned are given back, not failed,
so a resume after the fix sends to them.

A batch is bounded (its claim, and half a lease of time), runs outside any transaction except the claim's, and is
safe to run any number of times at once: each run claims different rows, and a run whose issue is not sending
does nothing. `BatchResult.more` tells the chain whether to queue the next batch.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from enum import StrEnum

from api.webhooks.outbox import smtp_bounce_notify
from newsletter.conf import app_settings
from newsletter.delivery import ledger, ratelimit
from newsletter.delivery.messages import Recipient, Skeleton, dkim_enabled, dkim_sign, personalise, skeleton_build
from newsletter.delivery.outcomes import OutcomeWriter
from newsletter.delivery.transports import Outcome, Result, Scope, Transport, TransportError, transport_open
from newsletter.models import Issue
from newsletter.services.rendering import issue_rendered

log = logging.getLogger(__name__)

# How often a batch re-reads the issue's status (pause/cancel take effect within this), instead of per message.
STATUS_CHECK_SECONDS = 1.0
# Refusals of the message itself in a row after which the issue, not the readers, is taken to be the problem.
REFUSAL_STREAK = 3


class StopReason(StrEnum):
    """Why a batch ended before its claim was used up ("" when it was not stopped)."""

    NONE = ""
    NOT_SENDING = "not sending"  # the issue was not sending when the batch began
    PAUSED = "paused"
    CANCELLED = "cancelled"
    LEASE_LOST = "lease lost"  # another worker owns our rows now (our lease expired)
    TIME = "time"  # half the lease has passed (or the rate limit would make it pass)
    TRANSPORT = "transport"  # the mail server or ESP could not be reached: the batch was deferred

    @property
    def ends_chain(self) -> bool:
        """No next batch: the issue stopped sending, or another worker took over."""
        return self in (StopReason.NOT_SENDING, StopReason.PAUSED, StopReason.CANCELLED, StopReason.LEASE_LOST)


@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    skipped: int = 0
    last_id: int = 0
    stopped: StopReason = StopReason.NONE

    @property
    def more(self) -> bool:
        """Whether the chain should go on: a claim that found rows suggests more; a stopped issue ends it."""
        return not self.stopped.ends_chain and self.claimed > 0


_skeletons: dict[tuple[int, object, str, int], Skeleton] = {}


def skeleton_for(issue: Issue, variant: int = 0) -> Skeleton:
    """The issue's skeleton, built once per worker process (keyed by id and frozen time, so a re-freeze rebuilds),
    one per A/B variant: the same render under that variant's subject."""
    key = (issue.pk, issue.frozen_at, issue.newsletter.slug, variant)
    skeleton = _skeletons.get(key)
    if skeleton is None:
        if not any(k[:3] == key[:3] for k in _skeletons):
            _skeletons.clear()  # one issue at a time is the common case; never let old issues pile up
        rendered = issue_rendered(issue)
        if variant:
            rendered = replace(rendered, subject=issue.variant_subject(variant))
        skeleton = _skeletons[key] = skeleton_build(issue, rendered)
    return skeleton


def deliveries_send_batch(issue_id: int, after_id: int = 0) -> BatchResult:
    """Claim one batch of the issue (pending rows after `after_id` first) and send it over one connection."""
    return Batch(issue_id, after_id).run()


class Batch:
    def __init__(self, issue_id: int, after_id: int) -> None:
        self.issue_id = issue_id
        self.result = BatchResult(last_id=after_id)
        self.after_id = after_id
        # Message refusals not yet written: failed once a message goes through, given back if the issue pauses.
        self.refused: list[tuple[Recipient, Result]] = []
        self.renew_every = float(ledger.lease_seconds()) / 3
        self.next_renewal = float("inf")

    def run(self) -> BatchResult:
        issue = Issue.objects.select_related("newsletter").filter(pk=self.issue_id).first()
        if issue is None or issue.status != Issue.Status.SENDING:
            return self.stop(StopReason.NOT_SENDING)
        self.issue = issue
        skeleton = skeleton_for(issue)
        claim = self.claim(issue)
        if not claim.claimed:
            ledger.run_idle(self.issue_id)  # only later deferred rows (if any): recovery wakes the send for them
        if not claim.recipients:
            return self.result
        with OutcomeWriter(claim.token) as writer:
            transport = self.open_transport(writer, claim.recipients)
            if transport is not None:
                try:
                    self.send_all(skeleton, transport, writer, claim.recipients)
                finally:
                    transport.close()
            self.release_unsent(writer)
        return self.result

    # --- the steps ----------------------------------------------------------------------------------------------

    def claim(self, issue: Issue) -> ledger.Claim:
        claim = ledger.deliveries_claim(issue, self.after_id)
        self.result.claimed, self.result.skipped = claim.claimed, claim.skipped
        self.result.last_id = claim.last_id or self.after_id
        return claim

    def open_transport(self, writer: OutcomeWriter, recipients: list[tuple[Recipient, int]]) -> Transport | None:
        """The batch's one connection; when it cannot be opened, every claimed row is deferred (an attempt)."""
        try:
            return transport_open()
        except TransportError as exc:
            log.warning("issue %s: %s; batch deferred", self.issue_id, exc)
            failure = Result(Outcome.DEFERRED, "", str(exc))
            for recipient, attempts in recipients:
                writer.deferred(recipient.delivery_id, attempts, failure)
            self.result.deferred += len(recipients)
            self.stop(StopReason.TRANSPORT)
            return None

    def send_all(
        self, skeleton: Skeleton, transport: Transport, writer: OutcomeWriter, recipients: list[tuple[Recipient, int]]
    ) -> None:
        started = time.monotonic()
        # A bounded batch: after SEND_BATCH_SECONDS the next link of the chain carries on.
        deadline = started + ledger.batch_seconds()
        # The short lease is renewed while the batch lives (a third of it at a time, so one late check is harmless).
        self.renew_every = ledger.lease_seconds() / 3
        self.next_renewal = started + self.renew_every
        check_every = min(STATUS_CHECK_SECONDS, self.renew_every)
        next_status_check = started + check_every
        throttle = ratelimit.Throttle()
        per_domain = bool(app_settings.RATE_PER_DOMAIN_PER_MINUTE)
        signing = dkim_enabled()
        total = len(recipients)
        # The next recipient is announced to the transport (SMTP pipelines its envelope with this message) only
        # when nothing can come between: no rate limit may make the batch wait or skip a reader.
        announce = not (per_domain or throttle.active)
        for index, (recipient, attempts) in enumerate(recipients):
            now = time.monotonic()
            if now >= next_status_check:
                next_status_check = now + check_every
                if self.stopped_by_editor(writer):
                    return
            # While the shared buckets make it wait, the batch still notices a pause within a second.
            if now >= deadline or not throttle.acquire(total - index, deadline, lambda: self.stopped_by_editor(writer)):
                if not self.result.stopped:
                    self.stop(StopReason.TIME)
                return
            if per_domain and self.domain_throttled(writer, recipient):
                continue
            # An A/B test's reader gets their variant's subject (the same skeleton but for that header).
            own = skeleton_for(self.issue, recipient.variant) if recipient.variant else skeleton
            message = personalise(own, recipient)
            data = dkim_sign(message.data, own.mail_from) if signing else message.data
            try:
                upcoming = recipients[index + 1][0] if announce and index + 1 < total else None
                result = transport.send(own, recipient, message, data, upcoming)
            except TransportError as exc:  # a reconnect failed: nothing more goes out over this batch
                self.defer_rest(writer, recipients[index:], exc)
                return
            if not self.record(writer, recipient, attempts, message.message_id, result):
                if not self.result.stopped:
                    self.stop(StopReason.LEASE_LOST)
                return
        self.fail_refused(writer)

    def stopped_by_editor(self, writer: OutcomeWriter) -> bool:
        """Once a second: has the issue been paused or cancelled, or our lease taken over? (And, when due, the
        lease of the rows still held is renewed.)"""
        now = time.monotonic()
        if now >= self.next_renewal:
            self.next_renewal = now + self.renew_every
            writer.renew(self.issue_id)
        if not writer.settle():
            self.stop(StopReason.LEASE_LOST)
            return True
        status = writer.issue_status(self.issue_id)
        if status == Issue.Status.SENDING:
            return False
        self.stop(StopReason.CANCELLED if status == Issue.Status.CANCELLED else StopReason.PAUSED)
        return True

    def domain_throttled(self, writer: OutcomeWriter, recipient: Recipient) -> bool:
        """The recipient's domain bucket is empty: back in the queue after the wait. Not an attempt."""
        wait = ratelimit.domain_allows(recipient.email.rpartition("@")[2])
        if not wait:
            return False
        writer.throttled(recipient.delivery_id, wait, "domain rate")
        self.result.deferred += 1
        return True

    def defer_rest(self, writer: OutcomeWriter, rest: list[tuple[Recipient, int]], exc: TransportError) -> None:
        """The transport is gone mid-batch: every row not yet sent is deferred now, not left to its lease."""
        log.warning("issue %s: %s; the rest of the batch deferred", self.issue_id, exc)
        self.fail_refused(writer)
        failure = Result(Outcome.DEFERRED, "", str(exc))
        for recipient, attempts in rest:
            writer.deferred(recipient.delivery_id, attempts, failure)
        self.result.deferred += len(rest)
        self.stop(StopReason.TRANSPORT)

    def record(
        self, writer: OutcomeWriter, recipient: Recipient, attempts: int, message_id: str, result: Result
    ) -> bool:
        """Write the outcome. False when the row is not ours any more (the lease was lost) or the issue paused."""
        if result.outcome == Outcome.FAILED and result.scope == Scope.SENDER:
            return self.pause(writer, f"{result.code} {result.text}".strip())
        if result.outcome == Outcome.FAILED and result.scope == Scope.MESSAGE:
            self.refused.append((recipient, result))
            if len(self.refused) >= REFUSAL_STREAK and len({r.code for _, r in self.refused}) == 1:
                return self.pause(writer, f"every message was refused: {result.code} {result.text}")
            return True
        if not self.fail_refused(writer):
            return False
        if result.outcome == Outcome.SENT:
            self.result.sent += 1
            return writer.sent(recipient.delivery_id, result.provider_id or message_id)
        if result.outcome == Outcome.DEFERRED:
            self.result.deferred += 1
            return writer.deferred(recipient.delivery_id, attempts, result)
        self.result.failed += 1
        owned = writer.failed(recipient.delivery_id, result.code, result.text)
        if result.hard_bounce:
            writer.suppress(recipient.email, f"{result.code} {result.text}")
            smtp_bounce_notify(recipient.delivery_id, recipient.email, result.code, result.text)
        return owned

    def fail_refused(self, writer: OutcomeWriter) -> bool:
        """The held message refusals were about those messages only: they fail. False when a row was not ours."""
        owned = True
        for recipient, result in self.refused:
            owned = writer.failed(recipient.delivery_id, result.code, result.text) and owned
            self.result.failed += 1
        self.refused.clear()
        return owned

    def pause(self, writer: OutcomeWriter, reason: str) -> bool:
        """The mail server or ESP refuses the issue, not a reader: pause it with the reason for the editor. The rows
        of this batch not yet written (the refused ones included) are given back by release_unsent."""
        self.refused.clear()
        if writer.pause_issue(self.issue_id, f"The mail server refused the issue: {reason}"):
            log.warning("issue %s: paused, the mail server refused the issue: %s", self.issue_id, reason)
        self.stop(StopReason.PAUSED)
        return False

    def release_unsent(self, writer: OutcomeWriter) -> None:
        """Rows claimed but never attempted: dropped when cancelled, pending again when paused or out of time."""
        if self.result.stopped == StopReason.CANCELLED:
            writer.release(cancelled=True, reason="cancelled")
        elif self.result.stopped in (StopReason.PAUSED, StopReason.TIME):
            writer.release()

    def stop(self, reason: StopReason) -> BatchResult:
        self.result.stopped = reason
        return self.result
