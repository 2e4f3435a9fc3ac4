"""The delivery core: the only writer of Delivery and SendRun rows. This module is its public surface; the rest
of the package is how it works, one module per step:

    lifecycle   start (freeze, then materialise), pause, resume, cancel, reopen failed, finish
    audience    who may be mailed: one definition for the materialise SQL, the claim's re-check and the counts
    ledger      every Delivery state change by name (materialise, claim, skip, release, requeue, cancel, withdraw)
    batch       one batch as named steps: claim → transport → personalise, send, record → release
    outcomes    the outcome writer: the pipelined PostgreSQL channel and every query of a batch in flight
    messages    the MIME skeleton built once per issue and personalised per recipient; DKIM
    transports  SMTP and any Django email backend behind one Transport protocol
    ratelimit   token buckets shared by every worker (Redis, or a locked file on one machine)
    recovery    beat's pass: start due issues, requeue expired leases, restart stalled sends, finish
    complaints  pause an issue whose complaint rate is too high
    proofs      test sends of an issue to a few editors
    transactional  confirmation and export emails through the same transport settings (TLS, DKIM)

Follow one delivery: services.sending.issue_send_now → send_start → dispatch.materialise_later →
tasks.materialise_task → deliveries_materialise → dispatch.batches_start → tasks.send_batch_task →
deliveries_send_batch (batch.Batch.run: ledger.deliveries_claim, transports, outcomes.OutcomeWriter.sent).
"""

from __future__ import annotations

from collections.abc import Iterable

from newsletter.models import Delivery

from .abtest import ab_report
from .audience import issue_rules, mailable_subscribers
from .batch import BatchResult, StopReason, deliveries_send_batch
from .complaints import issue_complaint_check, issue_complaint_rate
from .feedback import (
    DeliveryRef,
    delivery_find,
    delivery_find_by_message_id,
    delivery_record_bounce,
    delivery_record_complaint,
)
from .ledger import deliveries_forget, deliveries_materialise, deliveries_withdraw
from .lifecycle import (
    send_cancel,
    send_finish,
    send_pause,
    send_reopen_failed,
    send_resume,
    send_start,
    welcome_add,
    welcome_start,
)
from .messages import AddressError, wire_address
from .proofs import proof_send
from .recovery import RecoveryReport, issues_recover
from .segments import segment_rules
from .transactional import transactional_send


def subscriber_withdraw(subscriber_id: int, newsletter_ids: Iterable[int] | None = None, reason: str = "") -> int:
    """Withdraw a reader from every send in progress (or those of `newsletter_ids`): their rows not yet claimed are
    skipped with `reason` now, in the caller's transaction; rows claimed later are re-checked by the claim.
    Call before locking the subscriber row (a claim locks deliveries, then reads subscribers). Returns rows
    changed."""
    return deliveries_withdraw(subscriber_id, newsletter_ids, reason)


def subscriber_forget(subscriber_id: int) -> int:
    """Erasure: the subscriber's deliveries keep their issue, status and time (the issue's counts) but lose the
    person and the server's reply text (which quotes the address). Returns rows changed."""
    return deliveries_forget(subscriber_id)


def delivery_for_message_id(message_id: str) -> Delivery | None:
    """The delivery an ESP or bounce reports by our Message-ID (with or without angle brackets), or None."""
    bare = message_id.strip().strip("<>")
    if not bare:
        return None
    candidates = {message_id.strip(), bare, f"<{bare}>"}
    # `exclude("")` states the partial index delivery_message_id's condition, so the planner may use it.
    rows = Delivery.objects.filter(message_id__in=candidates).exclude(message_id="")
    return rows.select_related("issue", "subscriber").first()


__all__ = [
    "ab_report",
    "AddressError",
    "BatchResult",
    "DeliveryRef",
    "RecoveryReport",
    "StopReason",
    "deliveries_materialise",
    "deliveries_send_batch",
    "delivery_find",
    "delivery_find_by_message_id",
    "delivery_for_message_id",
    "delivery_record_bounce",
    "delivery_record_complaint",
    "issue_complaint_check",
    "issue_complaint_rate",
    "issues_recover",
    "issue_rules",
    "mailable_subscribers",
    "segment_rules",
    "proof_send",
    "send_cancel",
    "send_finish",
    "send_pause",
    "send_reopen_failed",
    "send_resume",
    "send_start",
    "subscriber_forget",
    "subscriber_withdraw",
    "welcome_add",
    "welcome_start",
    "transactional_send",
    "wire_address",
]
