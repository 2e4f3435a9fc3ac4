"""Deliveries: materialise one row per recipient, claim a batch, send it outside any transaction, record outcomes.

Why each outcome is written as it happens (one autocommitted UPDATE per message, `synchronous_commit = off` on
PostgreSQL): a worker killed at any instant then leaves exactly one message in doubt, the one on the wire. With
`synchronous_commit = off` a commit does not wait for the WAL flush; a killed *worker* loses nothing it committed,
only a crash of PostgreSQL itself can drop the last fraction of a second of outcomes (README, Benchmarks, has the cost).
"""

from __future__ import annotations

import logging
import random
import select
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from api.webhooks.outbox import smtp_bounce_notify
from newsletter.models import Delivery, Issue, SendRun
from newsletter.services import ratelimit
from newsletter.services.messages import (
    AddressError,
    Recipient,
    Skeleton,
    dkim_enabled,
    dkim_sign,
    personalise,
    skeleton_build,
    wire_address,
)
from newsletter.services.rendering import issue_rendered
from newsletter.services.transports import DEFERRED, FAILED, SENT, Outcome, TransportError, transport_open
from subscribers.models import ConsentEvent, Subscriber, Subscription, Suppression
from subscribers.services.suppression import address_suppress

log = logging.getLogger(__name__)

MATERIALISE_CHUNK = 10_000
# How often a batch re-reads the issue's status (pause/cancel take effect within this), instead of per message.
STATUS_CHECK_SECONDS = 1.0


def _config(name: str, default):
    return settings.MASTHEAD.get(name, default)


def lease_seconds() -> int:
    return int(_config("SEND_LEASE_SECONDS", 120))


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


# --- materialise ------------------------------------------------------------------------------------------------


def deliveries_materialise(issue_id: int, after_subscriber_id: int = 0, budget_seconds: float = 20.0) -> int | None:
    """Create a pending Delivery for every mailable subscriber of the issue's newsletter, in keyset chunks of
    subscriber ids (a million-row list never sits in memory), one short transaction per chunk.

    Safe to run twice: the (issue, subscriber) unique constraint plus ON CONFLICT DO NOTHING adds nothing new.
    Returns the subscriber id to continue after when the time budget ran out, or None when done (and then marks
    the send run materialised)."""
    issue = Issue.objects.select_related("newsletter").get(pk=issue_id)
    newsletter_id = issue.newsletter_id
    delivery, subscriber, subscription = (
        Delivery._meta.db_table,
        Subscriber._meta.db_table,
        Subscription._meta.db_table,
    )
    cursor_id = after_subscriber_id
    deadline = time.monotonic() + budget_seconds
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {subscriber} WHERE id > %s ORDER BY id LIMIT 1 OFFSET %s",
                [cursor_id, MATERIALISE_CHUNK - 1],
            )
            row = cursor.fetchone()
            upper = row[0] if row else None
            now = connection.ops.adapt_datetimefield_value(timezone.now())
            with transaction.atomic():
                cursor.execute(
                    f"""INSERT INTO {delivery}
                          (issue_id, subscriber_id, status, attempts, message_id, error_code, error_text, updated_at)
                        SELECT %s, s.id, %s, 0, '', '', '', %s
                        FROM {subscriber} s JOIN {subscription} m ON m.subscriber_id = s.id AND m.newsletter_id = %s
                        WHERE s.id > %s {"AND s.id <= %s" if upper else ""} AND s.status = %s AND m.status = %s
                        ON CONFLICT DO NOTHING""",
                    [issue_id, Delivery.Status.PENDING, now, newsletter_id, cursor_id]
                    + ([upper] if upper else [])
                    + [Subscriber.Status.ACTIVE, Subscription.Status.ACTIVE],
                )
                SendRun.objects.filter(pk=issue_id).update(batch_started_at=timezone.now())
        if upper is None:
            SendRun.objects.filter(pk=issue_id).update(materialised_at=timezone.now())
            return None
        cursor_id = upper
        if time.monotonic() > deadline:
            return cursor_id


# --- claim ------------------------------------------------------------------------------------------------------


@dataclass
class Claim:
    token: uuid.UUID
    recipients: list[tuple[Recipient, int]] = field(default_factory=list)  # (recipient, attempts)
    claimed: int = 0
    skipped: int = 0
    last_id: int = 0


def deliveries_claim(issue: Issue, after_id: int = 0, limit: int | None = None) -> Claim:
    """Claim up to `limit` claimable deliveries of the issue: pending ones by id after `after_id` (then from the
    start, for rows recovery put back), then deferred ones whose time has come. One short transaction: lock with
    FOR UPDATE SKIP LOCKED (PostgreSQL; on SQLite the IMMEDIATE transaction write-locks the whole database, which
    serialises claims just as well), mark them sending with a lease and a claim token, re-check that each
    subscriber may still be mailed (unsubscribed, suppressed or erased since materialising: skipped), commit."""
    limit = limit or int(_config("SEND_BATCH_SIZE", 200))
    now = timezone.now()
    claim = Claim(token=uuid.uuid4())
    with transaction.atomic():
        base = Delivery.objects.filter(issue_id=issue.pk).select_for_update(skip_locked=True, of=("self",))
        pending = base.filter(status=Delivery.Status.PENDING).order_by("id")
        ids = list(pending.filter(id__gt=after_id).values_list("id", flat=True)[:limit])
        if len(ids) < limit and after_id:
            ids += pending.filter(id__lte=after_id).values_list("id", flat=True)[: limit - len(ids)]
        if len(ids) < limit:
            due = base.filter(status=Delivery.Status.DEFERRED, next_attempt_at__lte=now).order_by("next_attempt_at")
            ids += due.values_list("id", flat=True)[: limit - len(ids)]
        if not ids:
            return claim
        claim.claimed = len(ids)
        claim.last_id = max(i for i in ids if i > after_id) if any(i > after_id for i in ids) else after_id
        Delivery.objects.filter(id__in=ids).update(
            status=Delivery.Status.SENDING,
            lease_until=now + timedelta(seconds=lease_seconds()),
            claim_token=claim.token,
            attempts=F("attempts") + 1,
            updated_at=now,
        )
        subscribed = Subscription.objects.filter(
            subscriber_id=OuterRef("subscriber_id"),
            newsletter_id=issue.newsletter_id,
            status=Subscription.Status.ACTIVE,
        )
        rows = (
            Delivery.objects.filter(id__in=ids)
            .annotate(subscribed=Exists(subscribed))
            .values_list(
                "id",
                "attempts",
                "subscriber__email",
                "subscriber__name",
                "subscriber__token",
                "subscriber__status",
                "subscribed",
            )
        )
        skipped: dict[str, list[int]] = {}
        for delivery_id, attempts, email, name, token, status, is_subscribed in rows:
            reason = _skip_reason(email, status, is_subscribed)
            if reason is None:
                try:
                    recipient = Recipient(delivery_id, wire_address(email), name, str(token))
                except AddressError as exc:
                    reason = str(exc)
                else:
                    claim.recipients.append((recipient, attempts))
                    continue
            skipped.setdefault(reason, []).append(delivery_id)
        for reason, delivery_ids in skipped.items():
            Delivery.objects.filter(id__in=delivery_ids).update(
                status=Delivery.Status.SKIPPED, error_text=reason, lease_until=None, claim_token=None, updated_at=now
            )
            claim.skipped += len(delivery_ids)
    # Outside the claim's transaction: the send run's "a batch started" mark is a hot row shared by all workers.
    SendRun.objects.filter(pk=issue.pk).update(batch_started_at=now)
    return claim


def _skip_reason(email: str | None, status: str | None, subscribed: bool) -> str | None:
    if email is None:
        return "subscriber erased"
    if status != Subscriber.Status.ACTIVE:
        return f"subscriber {status}"
    if not subscribed:
        return "unsubscribed from this newsletter"
    return None


# --- outcomes ---------------------------------------------------------------------------------------------------


class OutcomeWriter:
    """Writes each outcome at once, conditional on the claim token (a row whose lease expired and that another
    worker re-claimed is not ours any more: the write changes nothing and the batch stops)."""

    def __init__(self, token: uuid.UUID):
        self.token = token
        self.raw = None
        self.sent_channel: _PgSentChannel | None = None
        if is_postgres():
            connection.ensure_connection()
            self.raw = connection.connection
            # Per session, reset in close(): commits stop waiting for the WAL flush (see the module docstring).
            if _config("SEND_ASYNC_COMMIT", True):
                self.raw.execute("SET synchronous_commit = off")
            self.sent_channel = _PgSentChannel(self.raw, token)

    def settle(self) -> bool:
        """Wait for the last pipelined write; before any other use of the connection. False: the lease was lost."""
        return self.sent_channel.collect() if self.sent_channel else True

    def _update(self, delivery_id: int, **fields) -> bool:
        if not self.settle():
            return False
        fields.setdefault("lease_until", None)
        fields["updated_at"] = timezone.now()
        if self.raw is None:
            return bool(Delivery.objects.filter(pk=delivery_id, claim_token=self.token).update(**fields))
        columns = ", ".join(f"{name} = %s" for name in fields)
        cursor = self.raw.execute(
            f"UPDATE {Delivery._meta.db_table} SET {columns} WHERE id = %s AND claim_token = %s",
            [*fields.values(), delivery_id, self.token],
            prepare=True,
        )
        return cursor.rowcount == 1

    def sent(self, delivery_id: int, message_id: str) -> bool:
        if self.sent_channel is not None:
            return self.sent_channel.send(delivery_id, message_id[:255])
        return self._update(
            delivery_id, status=Delivery.Status.SENT, sent_at=timezone.now(), message_id=message_id[:255]
        )

    def deferred(self, delivery_id: int, attempts: int, outcome: Outcome, delay: float | None = None) -> bool:
        if delay is None and attempts >= int(_config("SEND_MAX_ATTEMPTS", 6)):
            return self.failed(delivery_id, outcome.code, f"gave up after {attempts} attempts: {outcome.text}")
        delay = backoff_seconds(attempts) if delay is None else delay
        return self._update(
            delivery_id,
            status=Delivery.Status.DEFERRED,
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
            error_code=outcome.code[:16],
            error_text=outcome.text,
        )

    def failed(self, delivery_id: int, code: str, text: str) -> bool:
        return self._update(delivery_id, status=Delivery.Status.FAILED, error_code=code[:16], error_text=text)

    def release(self, status: str = Delivery.Status.PENDING, reason: str = "") -> int:
        """Give back the claimed rows not yet attempted (pause, cancel, time budget). They were not tried, so the
        attempt counted at claim time is taken back."""
        self.settle()
        return Delivery.objects.filter(claim_token=self.token, status=Delivery.Status.SENDING).update(
            status=status,
            lease_until=None,
            claim_token=None,
            attempts=F("attempts") - 1,
            error_text=reason,
            updated_at=timezone.now(),
        )

    def close(self) -> None:
        self.settle()
        if self.raw is not None and not self.raw.closed:
            self.raw.execute("RESET synchronous_commit")


class _PgSentChannel:
    """The hot write, "this one was sent", without waiting for its answer: the UPDATE is on the wire to PostgreSQL
    before the next message goes to the SMTP server, and its result is read while that message is in flight.

    The bound holds: if the worker dies, every UPDATE it wrote reaches the server (the kernel delivers a socket's
    buffered bytes on close) and commits (a simple statement commits before PostgreSQL answers), so only the
    message on the wire is in doubt. What it saves is the wait, a round trip per message."""

    NAME = b"masthead_delivery_sent"
    SQL = (
        f"UPDATE {Delivery._meta.db_table} SET status = 'sent', sent_at = $1, updated_at = $1, message_id = $2, "
        "lease_until = NULL WHERE id = $3 AND claim_token = $4"
    ).encode()

    def __init__(self, raw, token: uuid.UUID):
        from psycopg import pq

        self.pq = pq
        self.pgconn = raw.pgconn
        self.token = str(token).encode()
        self.pending = False
        if not getattr(raw, "_masthead_prepared", False):
            result = self.pgconn.prepare(self.NAME, self.SQL)
            if result.status != pq.ExecStatus.COMMAND_OK and b"already exists" not in (result.error_message or b""):
                raise RuntimeError(result.error_message.decode(errors="replace"))
            raw._masthead_prepared = True

    def send(self, delivery_id: int, message_id: str) -> bool:
        owned = self.collect()
        now = timezone.now().isoformat().encode()
        params = [now, message_id.encode(), str(delivery_id).encode(), self.token]
        self.pgconn.send_query_prepared(self.NAME, params)
        while self.pgconn.flush():  # non-blocking connection: push it all out before the next message
            select.select([], [self.pgconn.socket], [])
        self.pending = True
        return owned

    def collect(self) -> bool:
        if not self.pending:
            return True
        self.pending = False
        owned = True
        while True:
            while self.pgconn.is_busy():
                select.select([self.pgconn.socket], [], [])
                self.pgconn.consume_input()
            result = self.pgconn.get_result()
            if result is None:
                return owned
            if result.status != self.pq.ExecStatus.COMMAND_OK:
                raise RuntimeError(result.error_message.decode(errors="replace"))
            owned = result.command_tuples == 1


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with ±25 % jitter, so deferred rows of many workers don't retry in lockstep."""
    base = float(_config("SEND_RETRY_BASE_SECONDS", 60))
    delay = min(base * 2 ** max(0, attempts - 1), float(_config("SEND_RETRY_MAX_SECONDS", 3600)))
    return delay * random.uniform(0.75, 1.25)


# --- the batch --------------------------------------------------------------------------------------------------

_skeletons: dict[tuple[int, object, str], Skeleton] = {}


def skeleton_for(issue: Issue) -> Skeleton:
    """The issue's skeleton, built once per worker process (keyed by id and frozen time, so a re-freeze rebuilds)."""
    key = (issue.pk, issue.frozen_at, issue.newsletter.slug)
    skeleton = _skeletons.get(key)
    if skeleton is None:
        _skeletons.clear()  # one issue at a time is the common case; never let old issues pile up
        skeleton = _skeletons[key] = skeleton_build(issue, issue_rendered(issue))
    return skeleton


@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    skipped: int = 0
    last_id: int = 0
    stopped: str = ""  # why the batch ended early: "paused", "cancelled", "lease lost", "time", "transport"

    @property
    def more(self) -> bool:
        """Whether the chain should go on: a full batch suggests more rows; an issue no longer sending stops it."""
        if self.stopped in ("paused", "cancelled", "not sending", "lease lost"):
            return False
        return self.claimed > 0


def deliveries_send_batch(issue_id: int, after_id: int = 0) -> BatchResult:
    """Claim one batch of the issue and send it over one connection. Safe to run any number of times at once:
    each run claims different rows, and a run whose issue is not sending does nothing."""
    issue = Issue.objects.select_related("newsletter").filter(pk=issue_id).first()
    result = BatchResult(last_id=after_id)
    if issue is None or issue.status != Issue.Status.SENDING:
        result.stopped = "not sending"
        return result
    skeleton = skeleton_for(issue)
    claim = deliveries_claim(issue, after_id)
    result.claimed, result.skipped, result.last_id = claim.claimed, claim.skipped, claim.last_id or after_id
    if not claim.recipients:
        return result
    writer = OutcomeWriter(claim.token)
    try:
        _send_claimed(issue, skeleton, claim, writer, result)
    finally:
        writer.close()
    return result


def _send_claimed(issue: Issue, skeleton: Skeleton, claim: Claim, writer: OutcomeWriter, result: BatchResult) -> None:
    started = time.monotonic()
    # Stop well before the lease runs out, so a slow (rate-limited) batch never races its own recovery.
    deadline = started + lease_seconds() / 2
    next_status_check = started + STATUS_CHECK_SECONDS
    throttle = ratelimit.Throttle()
    per_domain = bool(_config("RATE_PER_DOMAIN_PER_MINUTE", 0))
    signing = dkim_enabled()
    try:
        transport = transport_open()
    except TransportError as exc:
        log.warning("issue %s: %s; batch deferred", issue.pk, exc)
        for recipient, attempts in claim.recipients:
            writer.deferred(recipient.delivery_id, attempts, Outcome(DEFERRED, "", str(exc)))
        result.deferred += len(claim.recipients)
        result.stopped = "transport"
        return
    total = len(claim.recipients)
    try:
        for index, (recipient, attempts) in enumerate(claim.recipients):
            now = time.monotonic()
            if now >= next_status_check:
                next_status_check = now + STATUS_CHECK_SECONDS
                if not writer.settle():
                    result.stopped = "lease lost"
                    break
                status = Issue.objects.filter(pk=issue.pk).values_list("status", flat=True).first()
                if status != Issue.Status.SENDING:
                    result.stopped = "cancelled" if status == Issue.Status.CANCELLED else "paused"
                    break
            if now >= deadline or not throttle.acquire(total - index, deadline):
                result.stopped = "time"
                break
            if per_domain:
                wait = ratelimit.domain_allows(recipient.email.rpartition("@")[2])
                if wait:
                    # Not an attempt: the domain's bucket is empty. Back in the queue after the wait.
                    writer.deferred(recipient.delivery_id, attempts - 1, Outcome(DEFERRED, "", "domain rate"), wait)
                    result.deferred += 1
                    continue
            message = personalise(skeleton, recipient)
            data = dkim_sign(message.data, skeleton.mail_from) if signing else message.data
            outcome = transport.send(skeleton, recipient, message, data)
            if not _record(writer, recipient, attempts, message.message_id, outcome, result):
                result.stopped = "lease lost"
                break
    finally:
        transport.close()
    if result.stopped in ("cancelled", "paused", "time"):
        if result.stopped == "cancelled":
            writer.release(Delivery.Status.SKIPPED, "cancelled")
        else:
            writer.release(Delivery.Status.PENDING)


def _record(
    writer: OutcomeWriter, recipient: Recipient, attempts: int, message_id: str, outcome: Outcome, result: BatchResult
) -> bool:
    if outcome.status == SENT:
        result.sent += 1
        return writer.sent(recipient.delivery_id, outcome.provider_id or message_id)
    if outcome.status == DEFERRED:
        result.deferred += 1
        return writer.deferred(recipient.delivery_id, attempts, outcome)
    result.failed += 1
    owned = writer.failed(recipient.delivery_id, outcome.code, outcome.text)
    if outcome.hard_bounce:
        writer.settle()
        address_suppress(
            recipient.email,
            Suppression.Reason.HARD_BOUNCE,
            ConsentEvent.Source.BOUNCE,
            f"SMTP {outcome.code} {outcome.text}"[:300],
        )
        smtp_bounce_notify(recipient.delivery_id, recipient.email, outcome.code, outcome.text)
    assert outcome.status == FAILED
    return owned
