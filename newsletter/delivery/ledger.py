"""Every change of a Delivery's state, by name, as a conditional UPDATE (like `Issue.transition_to`): a row moves
only from the states its transition names, so of two concurrent writers exactly one wins and a repeat does nothing.
The send run's bookkeeping (SendRun) is written here too. The outcome of a send (sent, deferred, failed) is written
by outcomes.py, conditional on the claim token, because it is on the hot path.

    materialise            (nothing) → pending        one row per mailable recipient, unique per issue
                           (nothing) → deferred       a send window: not before the reader's local time
    claim                  pending, deferred (due) → sending    FOR UPDATE SKIP LOCKED, lease + claim token
    skip                   sending → skipped          the claim's re-check: no longer mailable
    release                sending → pending/skipped  unsent rows given back (pause, time) or dropped (cancel)
    requeue_expired        sending → pending          the lease ran out: its worker died
    cancel_open            pending, deferred → skipped     the issue was cancelled
    withdraw               pending, deferred → skipped     the reader unsubscribed, was suppressed or erased
    reopen_failed          failed → pending           resend to those who did not get it
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from engagement.services.consent import reader_measured
from newsletter.conf import app_settings
from newsletter.delivery import audience, windows
from newsletter.delivery.messages import AddressError, Recipient, wire_address
from newsletter.models import Delivery, Issue, SendRun
from subscribers.models import Subscriber, Subscription

Status = Delivery.Status
MATERIALISE_CHUNK = 10_000
# Issues whose open rows may still be claimed by a sender (a withdrawn reader must not be mailed by them).
IN_PROGRESS = (Issue.Status.SCHEDULED, Issue.Status.SENDING, Issue.Status.PAUSED, Issue.Status.FAILED)
OPEN_STATES = (Status.PENDING, Status.SENDING, Status.DEFERRED, Status.HELD)


class Transition(NamedTuple):
    sources: tuple[str, ...]
    target: str

    def apply(self, rows: QuerySet[Delivery], **fields) -> int:
        """Move the rows still in a source state; returns how many moved."""
        fields.setdefault("updated_at", timezone.now())
        return rows.filter(status__in=self.sources).update(status=self.target, **fields)


CLAIM = Transition((Status.PENDING, Status.DEFERRED), Status.SENDING)
SKIP = Transition((Status.SENDING,), Status.SKIPPED)
RELEASE = Transition((Status.SENDING,), Status.PENDING)
RELEASE_CANCELLED = Transition((Status.SENDING,), Status.SKIPPED)
REQUEUE_EXPIRED = Transition((Status.SENDING,), Status.PENDING)
CANCEL_OPEN = Transition((Status.PENDING, Status.DEFERRED, Status.HELD), Status.SKIPPED)
WITHDRAW = Transition((Status.PENDING, Status.DEFERRED, Status.HELD), Status.SKIPPED)
RELEASE_HELD = Transition((Status.HELD,), Status.PENDING)
REOPEN_FAILED = Transition((Status.FAILED,), Status.PENDING)


def lease_seconds() -> int:
    return int(app_settings.SEND_LEASE_SECONDS)


def batch_seconds() -> float:
    return float(app_settings.SEND_BATCH_SECONDS)


def stale_after() -> timedelta:
    """A send whose heartbeat is older than a lease has no live batch (a live one beats it when it renews)."""
    return timedelta(seconds=lease_seconds())


# --- materialise ------------------------------------------------------------------------------------------------


def deliveries_materialise(issue_id: int, after_subscriber_id: int = 0, budget_seconds: float = 20.0) -> int | None:
    """Create a pending Delivery for every mailable subscriber of the issue's newsletter, in keyset chunks over the
    newsletter's own active subscriptions (a million-row list never sits in memory), one short transaction each.

    Each chunk costs its own size whatever else the tables hold: its subscriber ids come in order from the partial
    index subscription_nl_active (audience.subscribed_ids_sql), so other newsletters' readers are never read; the
    rows are then written for exactly those ids, by primary key (audience.mailable_among_sql). A single INSERT …
    SELECT joining the two tables leaves the planner free to hash-join against every subscriber once per chunk:
    quadratic. Statistics are refreshed where a send needs them (deliveries_analyse).

    Safe to run twice: the (issue, subscriber) unique constraint plus ON CONFLICT DO NOTHING adds nothing new.
    Returns the subscriber id to continue after when the time budget ran out, or None when done (and then marks
    the send run materialised)."""
    issue = Issue.objects.get(pk=issue_id)
    # A canary send writes every row held; the canary is picked from them once all exist.
    # An A/B test likewise: its test share is picked and split once all rows exist, the rest waits for the winner.
    initial = Status.HELD if issue.canary_percent or issue.ab_subjects else Status.PENDING
    postgres = connection.vendor == "postgresql"
    delivery = Delivery._meta.db_table
    if after_subscriber_id == 0:
        tables_analyse(Subscriber, Subscription)
    cursor_id = after_subscriber_id
    deadline = time.monotonic() + budget_seconds
    while True:
        with connection.cursor() as cursor:
            cursor.execute(*audience.subscribed_ids_sql(issue.newsletter_id, cursor_id, MATERIALISE_CHUNK))
            ids = [subscriber_id for (subscriber_id,) in cursor.fetchall()]
            if ids:
                tables, mailable, params = audience.mailable_among_sql(ids, postgres, issue.audience)
                now = connection.ops.adapt_datetimefield_value(timezone.now())
                # A send window: the rows of readers whose local time has not come are written waiting for it.
                status_sql, status_params, due_sql, due_params = _wait_local_sql(issue, ids, initial)
                with transaction.atomic():
                    cursor.execute(
                        f"""INSERT INTO {delivery}
                              (issue_id, subscriber_id, status, attempts, message_id, error_code, error_text,
                               updated_at, next_attempt_at)
                            SELECT %s, s.id, {status_sql}, 0, '', '', '', %s, {due_sql} FROM {tables}
                            WHERE {mailable}
                            ON CONFLICT DO NOTHING""",
                        [issue_id, *status_params, now, *due_params, *params],
                    )
                    run_beat(issue_id)
        if len(ids) < MATERIALISE_CHUNK:
            if initial == Status.HELD:
                if issue.ab_subjects:
                    deliveries_ab_pick(issue)
                else:
                    deliveries_canary_pick(issue)
            SendRun.objects.filter(pk=issue_id).update(materialised_at=timezone.now())
            tables_analyse(Delivery)
            return None
        cursor_id = ids[-1]
        if time.monotonic() > deadline:
            tables_analyse(Delivery)
            return cursor_id


def _wait_local_sql(issue: Issue, subscriber_ids: list[int], initial: str) -> tuple[str, list, str, list]:
    """(status SQL, parameters, next_attempt_at SQL, parameters) for materialise's SELECT: without a send window
    `initial` and NULL; with one, `deferred` until each reader's local time (windows.release_at) for the zones that
    must wait, as two CASEs over `s.time_zone` with one branch per zone of this chunk (the chunk's distinct zones
    are read first), so the rows are written waiting, never updated afterwards."""
    if not issue.has_send_window:
        return "%s", [initial], "NULL", []
    started = issue.started_at or timezone.now()
    zones = Subscriber.objects.filter(pk__in=subscriber_ids).order_by().values_list("time_zone", flat=True)
    due = {zone: windows.release_at(issue, zone, started) for zone in set(zones)}
    due = {zone: connection.ops.adapt_datetimefield_value(when) for zone, when in due.items() if when is not None}
    if not due:
        return "%s", [initial], "NULL", []
    branches = " ".join(["WHEN %s THEN %s"] * len(due))
    pairs = [value for zone, when in sorted(due.items()) for value in (zone, when)]
    status_pairs = [value for zone in sorted(due) for value in (zone, Status.DEFERRED)]
    return (
        f"CASE s.time_zone {branches} ELSE %s END",
        [*status_pairs, initial],
        f"CASE s.time_zone {branches} END",
        pairs,
    )


def tables_analyse(*models) -> None:
    """Refresh PostgreSQL's statistics of these tables (sampled: a few hundred ms at millions of rows).

    Why a send does it itself: autovacuum analyses a table after a tenth of it changed, so a 30,000-row issue in a
    5,000,000-row ledger is never in the statistics while it sends, and a list imported a second ago is not in
    them either. On such statistics the planner expects one row and picks the plain issue_id (or newsletter_id)
    index: every claim then reads all of the issue's rows, every materialise chunk the whole list (quadratic).
    So the subscription tables are analysed when a send starts, and deliveries at the end of each materialise
    stretch: before the chains start (they start after the first stretch) and once all rows exist."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + ", ".join(model._meta.db_table for model in models))


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
    subscriber may still be mailed (audience.unmailable_reason: skipped otherwise), commit."""
    limit = limit or int(app_settings.SEND_BATCH_SIZE)
    now = timezone.now()
    claim = Claim(token=uuid.uuid4())
    with transaction.atomic():
        base = Delivery.objects.filter(issue_id=issue.pk).select_for_update(skip_locked=True, of=("self",))
        pending = base.filter(status=Status.PENDING).order_by("id")
        ids = list(pending.filter(id__gt=after_id).values_list("id", flat=True)[:limit])
        if len(ids) < limit and after_id:
            ids += pending.filter(id__lte=after_id).values_list("id", flat=True)[: limit - len(ids)]
        if len(ids) < limit:
            due = base.filter(status=Status.DEFERRED, next_attempt_at__lte=now).order_by("next_attempt_at")
            ids += due.values_list("id", flat=True)[: limit - len(ids)]
        if not ids:
            return claim
        claim.claimed = len(ids)
        claim.last_id = max(i for i in ids if i > after_id) if any(i > after_id for i in ids) else after_id
        CLAIM.apply(
            Delivery.objects.filter(id__in=ids),
            lease_until=now + timedelta(seconds=lease_seconds()),
            claim_token=claim.token,
            attempts=F("attempts") + 1,
            updated_at=now,
        )
        rows = (
            Delivery.objects.filter(id__in=ids)
            .annotate(subscribed=audience.subscribed(issue.newsletter_id), per_reader=reader_measured(issue))
            .values_list(
                "id",
                "attempts",
                "subscriber__email",
                "subscriber__name",
                "subscriber__token",
                "subscriber__status",
                "subscribed",
                "variant",
                "per_reader",
            )
        )
        skipped: dict[str, list[int]] = {}
        for delivery_id, attempts, email, name, token, status, is_subscribed, variant, per_reader in rows:
            reason = audience.unmailable_reason(email, status, is_subscribed)
            if reason is None:
                try:
                    recipient = Recipient(
                        delivery_id, wire_address(email), name, str(token), variant=variant, per_reader=per_reader
                    )
                except AddressError as exc:
                    reason = str(exc)
                else:
                    claim.recipients.append((recipient, attempts))
                    continue
            skipped.setdefault(reason, []).append(delivery_id)
        for reason, delivery_ids in skipped.items():
            claim.skipped += deliveries_skip(delivery_ids, reason, now)
    # Outside the claim's transaction: the send run's heartbeat is a hot row shared by all workers.
    run_beat(issue.pk, now)
    return claim


def deliveries_renew(token: uuid.UUID) -> int:
    """A live batch extends the lease of the rows it still holds (not a state change). Leases are short so that a
    killed worker's rows come back fast; a batch renews them while it lives."""
    return Delivery.objects.filter(claim_token=token, status=Status.SENDING).update(
        lease_until=timezone.now() + timedelta(seconds=lease_seconds())
    )


def deliveries_skip(delivery_ids: list[int], reason: str, now: datetime | None = None) -> int:
    """Claimed rows whose subscriber may no longer be mailed: skipped with the reason, never attempted."""
    return SKIP.apply(
        Delivery.objects.filter(id__in=delivery_ids),
        error_text=reason,
        lease_until=None,
        claim_token=None,
        updated_at=now or timezone.now(),
    )


# --- release, requeue, cancel, withdraw, reopen ----------------------------------------------------------------


def deliveries_release(token: uuid.UUID, cancelled: bool = False, reason: str = "") -> int:
    """Give back a claim's rows not yet attempted (pause, time budget: pending again; cancel: skipped). They were
    not tried, so the attempt counted at claim time is taken back."""
    transition = RELEASE_CANCELLED if cancelled else RELEASE
    return transition.apply(
        Delivery.objects.filter(claim_token=token),
        lease_until=None,
        claim_token=None,
        attempts=F("attempts") - 1,
        error_text=reason,
    )


def deliveries_requeue_expired(now: datetime) -> int:
    """Rows whose worker died holding them (the lease ran out): back to pending for anyone to claim. The message
    it had on the wire may have gone (the one possible duplicate); the rest never did."""
    return REQUEUE_EXPIRED.apply(
        Delivery.objects.lease_expired(now), lease_until=None, claim_token=None, updated_at=now
    )


def deliveries_expired_issue_ids(now: datetime) -> set[int]:
    """The issues that have rows whose lease ran out."""
    # In lease order, so the scan is the in-flight lease index's (few rows), like the requeue's own.
    return set(Delivery.objects.lease_expired(now).order_by("lease_until").values_list("issue_id", flat=True))


def deliveries_cancel_open(issue_ids: Iterable[int] | None = None, now: datetime | None = None) -> int:
    """Open rows of cancelled issues (all of them, or of `issue_ids`) become skipped."""
    # By issue id (IN a subquery), not by a join: the join compiles to `id IN (SELECT … JOIN …)`, which PostgreSQL
    # plans as a scan of every pending and deferred row of the ledger; this reads only the cancelled issues' rows.
    rows = Delivery.objects.filter(issue_id__in=Issue.objects.filter(status=Issue.Status.CANCELLED).values("id"))
    if issue_ids is not None:
        rows = rows.filter(issue_id__in=list(issue_ids))
    return CANCEL_OPEN.apply(rows, error_text="cancelled", updated_at=now or timezone.now())


def deliveries_withdraw(subscriber_id: int, newsletter_ids: Iterable[int] | None = None, reason: str = "") -> int:
    """The subscriber's not-yet-claimed rows of in-progress issues (all newsletters, or `newsletter_ids`) become
    skipped with the reason. Rows already claimed are in flight and cannot be recalled; the claim re-checks."""
    rows = Delivery.objects.filter(subscriber_id=subscriber_id, issue__status__in=IN_PROGRESS)
    if newsletter_ids is not None:
        rows = rows.filter(issue__newsletter_id__in=list(newsletter_ids))
    return WITHDRAW.apply(rows, error_text=reason)


def deliveries_forget(subscriber_id: int) -> int:
    """Not a state change: an erased subscriber's rows keep their state and lose what was personal."""
    return Delivery.objects.filter(subscriber_id=subscriber_id).update(error_text="", subscriber=None)


def deliveries_reopen_failed(issue_id: int) -> int:
    """Failed rows back to pending with a clean slate, for "resend to missing". Returns how many."""
    return REOPEN_FAILED.apply(
        Delivery.objects.filter(issue_id=issue_id), attempts=0, error_code="", error_text="", next_attempt_at=None
    )


def deliveries_canary_pick(issue: Issue) -> int:
    """Release a random `canary_percent` share (at least `canary_minimum`) of the held rows to go first, once.
    Safe to run twice: a send run that has its canary picks none again. Returns the canary's size."""
    with transaction.atomic():
        run = SendRun.objects.select_for_update().get(pk=issue.pk)
        if run.canary_size is not None:
            return run.canary_size
        held = Delivery.objects.filter(issue_id=issue.pk, status=Status.HELD)
        total = held.count()
        size = min(total, max(issue.canary_minimum, math.ceil(total * issue.canary_percent / 100)))
        # Random, not the oldest subscribers first: a canary must look like the whole list.
        chosen = list(held.order_by("?").values_list("id", flat=True)[:size])
        RELEASE_HELD.apply(Delivery.objects.filter(id__in=chosen))
        run.canary_size = size
        run.save(update_fields=["canary_size"])
    return size


def deliveries_release_held(issue_id: int, variant: int | None = None) -> int:
    """The rest of a canary send (or of an A/B test, with the winning `variant`) may go: held rows become
    pending."""
    fields = {} if variant is None else {"variant": variant}
    return RELEASE_HELD.apply(Delivery.objects.filter(issue_id=issue_id), **fields)


def deliveries_ab_pick(issue: Issue) -> int:
    """Release a random `ab_test_percent` share of the held rows (at least one per subject), split evenly between
    the subjects: variant 1, 2 … in turn. Once: a send run that has its test picks none again. Returns the test's
    size."""
    subjects = len(issue.ab_subjects)
    with transaction.atomic():
        run = SendRun.objects.select_for_update().get(pk=issue.pk)
        if run.ab_test_size is not None:
            return run.ab_test_size
        held = Delivery.objects.filter(issue_id=issue.pk, status=Status.HELD)
        total = held.count()
        size = min(total, max(subjects, math.ceil(total * issue.ab_test_percent / 100)))
        chosen = list(held.order_by("?").values_list("id", flat=True)[:size])
        for variant in range(1, subjects + 1):
            RELEASE_HELD.apply(Delivery.objects.filter(id__in=chosen[variant - 1 :: subjects]), variant=variant)
        run.ab_test_size = size
        run.save(update_fields=["ab_test_size"])
    return size


def delivery_add(issue_id: int, subscriber_id: int) -> bool:
    """One pending row for this reader (a welcome email). False when they have one already: the (issue,
    subscriber) unique constraint is what makes a twice-processed confirmation send once."""
    try:
        with transaction.atomic():  # a savepoint: the caller's transaction survives the conflict
            Delivery.objects.create(issue_id=issue_id, subscriber_id=subscriber_id, status=Status.PENDING)
    except IntegrityError:
        return False
    return True


def deliveries_open_exist(issue_id: int) -> bool:
    return Delivery.objects.filter(issue_id=issue_id, status__in=OPEN_STATES).exists()


def deliveries_claimable_exist(issue_id: int, now: datetime) -> bool:
    return Delivery.objects.filter(issue_id=issue_id).claimable(now).exists()


# --- the send run -----------------------------------------------------------------------------------------------


def run_open(issue: Issue, user, now: datetime) -> None:
    """A send starts (again): not materialised yet, alive now."""
    SendRun.objects.update_or_create(
        issue=issue, defaults={"materialised_at": None, "heartbeat_at": now, "wake_at": None, "started_by": user}
    )


def run_materialised(issue_id: int, now: datetime) -> None:
    """Every recipient the send will have now has its row."""
    SendRun.objects.filter(pk=issue_id).update(materialised_at=now)


def run_beat(issue_id: int, now: datetime | None = None) -> None:
    """Something is working on this send (a claim, a materialise chunk, a resume)."""
    SendRun.objects.filter(pk=issue_id).update(heartbeat_at=now or timezone.now())


def run_idle(issue_id: int) -> None:
    """A batch found nothing to claim: the chain ends. If deferred rows wait for later, the send is to be woken
    when the earliest is due (recovery reads `wake_at`), not a lease later when its heartbeat has gone stale."""
    due = (
        Delivery.objects.filter(issue_id=issue_id, status=Status.DEFERRED)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    SendRun.objects.filter(pk=issue_id).update(wake_at=due)


def run_count_resend(issue_id: int) -> None:
    SendRun.objects.filter(pk=issue_id).update(heartbeat_at=timezone.now(), resends=F("resends") + 1)


def run_take_over(run: SendRun, now: datetime) -> bool:
    """Claim the right to restart this send: of two concurrent recoveries only one moves the heartbeat."""
    with transaction.atomic():
        seen = run.heartbeat_at
        mark = Q(heartbeat_at__isnull=True) if seen is None else Q(heartbeat_at=seen)
        return bool(SendRun.objects.filter(mark, pk=run.pk).update(heartbeat_at=now, wake_at=None))
