"""The outcome writer: owns the database connection while a batch is in flight, and makes every query the batch
needs meanwhile (outcomes, the issue's status, a hard bounce's suppression, the release of unsent rows).

Why each outcome is written as it happens (one autocommitted UPDATE per message, `synchronous_commit = off` on
PostgreSQL): a worker killed at any instant then leaves exactly one message in doubt, the one on the wire. With
`synchronous_commit = off` a commit does not wait for the WAL flush; a killed *worker* loses nothing it committed,
only a crash of PostgreSQL itself can drop the last fraction of a second of outcomes (README, Benchmarks, has the
cost).

On PostgreSQL the "sent" UPDATE is pipelined (`_PgSentChannel`): its answer is read while the next message is on
the wire. The connection must not be used for anything else until that answer is read, so every query of a batch
goes through this class, which settles the channel first. Callers never have to remember to.
"""

from __future__ import annotations

import random
import select
import uuid
from datetime import timedelta

from django.db import connection
from django.db.models import F
from django.utils import timezone
from psycopg import pq

from newsletter.conf import app_settings
from newsletter.delivery import ledger, lifecycle
from newsletter.delivery.transports import Result
from newsletter.models import Delivery, Issue
from subscribers.models import ConsentEvent, Suppression
from subscribers.services.suppression import address_suppress


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with ±25 % jitter, so deferred rows of many workers don't retry in lockstep."""
    base = float(app_settings.SEND_RETRY_BASE_SECONDS)
    delay = min(base * 2 ** max(0, attempts - 1), float(app_settings.SEND_RETRY_MAX_SECONDS))
    return delay * random.uniform(0.75, 1.25)


class OutcomeWriter:
    """Writes each outcome at once, conditional on the claim token (a row whose lease expired and that another
    worker re-claimed is not ours any more: the write changes nothing, returns False, and the batch stops).
    A context manager: leaving it settles the channel and resets the session."""

    def __init__(self, token: uuid.UUID):
        self.token = token
        self.raw = None
        self.sent_channel: _PgSentChannel | None = None
        self.max_attempts = int(app_settings.SEND_MAX_ATTEMPTS)
        if is_postgres():
            connection.ensure_connection()
            self.raw = connection.connection
            # Per session, reset in close(): commits stop waiting for the WAL flush (see the module docstring).
            if app_settings.SEND_ASYNC_COMMIT:
                self.raw.execute("SET synchronous_commit = off")
            self.sent_channel = _PgSentChannel(self.raw, token)

    def __enter__(self) -> OutcomeWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def settle(self) -> bool:
        """Wait for the last pipelined write. False: the lease was lost (another worker owns the row now)."""
        return self.sent_channel.collect() if self.sent_channel else True

    # --- the outcomes -------------------------------------------------------------------------------------------

    def sent(self, delivery_id: int, message_id: str) -> bool:
        if self.sent_channel is not None:
            return self.sent_channel.send(delivery_id, message_id[:255])
        return self._update(
            delivery_id, status=Delivery.Status.SENT, sent_at=timezone.now(), message_id=message_id[:255]
        )

    def deferred(self, delivery_id: int, attempts: int, result: Result, delay: float | None = None) -> bool:
        """Try again later (after `delay`, or the backoff for `attempts`); fails the row once attempts run out."""
        if delay is None and attempts >= self.max_attempts:
            return self.failed(delivery_id, result.code, f"gave up after {attempts} attempts: {result.text}")
        delay = backoff_seconds(attempts) if delay is None else delay
        return self._update(
            delivery_id,
            status=Delivery.Status.DEFERRED,
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
            error_code=result.code[:16],
            error_text=result.text,
        )

    def throttled(self, delivery_id: int, wait: float, reason: str) -> bool:
        """Not sent because a rate limit said wait: deferred for `wait` seconds, and not an attempt (the one the
        claim counted is taken back), so throttling can never use up a row's attempts."""
        if not self.settle():
            return False
        now = timezone.now()
        fields = {"next_attempt_at": now + timedelta(seconds=wait), "error_code": "", "error_text": reason}
        if self.raw is None:
            rows = Delivery.objects.filter(pk=delivery_id, claim_token=self.token)
            return bool(
                rows.update(status=Delivery.Status.DEFERRED, attempts=F("attempts") - 1, lease_until=None,
                            updated_at=now, **fields)
            )  # fmt: skip
        cursor = self.raw.execute(
            f"UPDATE {Delivery._meta.db_table} SET status = %s, attempts = attempts - 1, lease_until = NULL, "
            "next_attempt_at = %s, error_code = %s, error_text = %s, updated_at = %s "
            "WHERE id = %s AND claim_token = %s",
            [Delivery.Status.DEFERRED, *fields.values(), now, delivery_id, self.token],
            prepare=True,
        )
        return cursor.rowcount == 1

    def failed(self, delivery_id: int, code: str, text: str) -> bool:
        return self._update(delivery_id, status=Delivery.Status.FAILED, error_code=code[:16], error_text=text)

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

    # --- the other queries of a batch in flight -----------------------------------------------------------------

    def issue_status(self, issue_id: int) -> str | None:
        self.settle()
        return Issue.objects.filter(pk=issue_id).values_list("status", flat=True).first()

    def suppress(self, email: str, detail: str) -> None:
        """A hard bounce: the address goes on the suppression list at once."""
        self.settle()
        address_suppress(email, Suppression.Reason.HARD_BOUNCE, ConsentEvent.Source.BOUNCE, detail[:300])

    def pause_issue(self, issue_id: int, reason: str) -> bool:
        """The issue, not a reader, is refused: pause it with the reason (lifecycle.send_pause)."""
        self.settle()
        return lifecycle.send_pause(Issue(pk=issue_id), reason=reason)

    def renew(self, issue_id: int) -> int:
        """Extend the lease of the rows this batch still holds (ledger.deliveries_renew), and beat the send's
        heartbeat: the send is alive."""
        self.settle()
        ledger.run_beat(issue_id)
        return ledger.deliveries_renew(self.token)

    def release(self, cancelled: bool = False, reason: str = "") -> int:
        """Give back the claimed rows not yet attempted (ledger.deliveries_release)."""
        self.settle()
        return ledger.deliveries_release(self.token, cancelled=cancelled, reason=reason)

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
            if result.status != pq.ExecStatus.COMMAND_OK:
                raise RuntimeError(result.error_message.decode(errors="replace"))
            owned = result.command_tuples == 1
