"""The hit queue and its flush: the redirect appends one short record (no database write on the request path),
beat's flush turns queued records into counts in batches.

Redis (REDIS_URL) holds the queue as one list: RPUSH per hit, about 0.1 ms. Without Redis (the embedded SQLite
setup) a hit is one small insert into PendingHit. The flush takes the hits older than a couple of seconds (so a
scanner's burst is seen whole), classifies them, adds them to the Tally rows with one upsert per distinct key,
writes per-reader Events for readers who still agree, and only then removes them from the queue. Redis losing
the queue loses those uncounted hits, never a delivery; a flush killed between its commit and the trim can count
a batch twice, which the lock makes rare (one flusher at a time).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import redis
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count

from engagement.models import OPEN, Event, Link, PendingHit, ReaderConsent, Tally, UniqueTally, Verdict
from engagement.services.classify import QueuedHit, verdicts
from newsletter.models import Delivery, Issue, TrackingMode

log = logging.getLogger(__name__)

QUEUE_KEY = "mh:engagement:hits"
PUSH_SECONDS = 0.25
PUSH_SIZE = 200
LOCK_KEY = "mh:engagement:flush-lock"
BATCH = 5000
SETTLE_SECONDS = 2.0  # a hit waits this long in the queue, so the rest of a scanner's burst is there with it
TIMELINE_HOURS = 48


@lru_cache(maxsize=1)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def redis_client() -> redis.Redis | None:
    url = getattr(settings, "REDIS_URL", "")
    return _client(url) if url.startswith(("redis://", "rediss://", "unix://")) else None


class _Buffer:
    """Hits of this process not yet in Redis: pushed together (one RPUSH of many) every PUSH_SECONDS by a
    background thread, or at once when PUSH_SIZE are waiting. A web process killed outright loses at most that
    fraction of a second of clicks (counts, never a delivery); a normal exit pushes them first."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: list[str] = []
        self.thread: threading.Thread | None = None
        self.pid = 0

    def add(self, record: str) -> None:
        with self.lock:
            self.records.append(record)
            full = len(self.records) >= PUSH_SIZE
            if self.pid != os.getpid():  # first hit in this (possibly forked) process
                self.pid = os.getpid()
                self.thread = threading.Thread(target=self._run, name="engagement-hits", daemon=True)
                self.thread.start()
        if full:
            self.push()

    def push(self) -> int:
        with self.lock:
            records, self.records = self.records, []
        client = redis_client()
        if records and client is not None:
            try:
                client.rpush(QUEUE_KEY, *records)
            except redis.RedisError:
                log.warning("engagement: %d hits lost (Redis unavailable)", len(records))
        return len(records)

    def _run(self) -> None:
        while True:
            time.sleep(PUSH_SECONDS)
            with contextlib.suppress(Exception):  # the thread must outlive any hiccup
                self.push()


_buffer = _Buffer()
atexit.register(_buffer.push)


def hit_queue(hit: QueuedHit) -> None:
    """Queue one hit, without waiting for any server. Never raises: a reader's click must redirect whatever
    happens. Without Redis it is one small insert."""
    if redis_client() is None:
        PendingHit.objects.create(record=hit.record(), created_at=hit.at)
        return
    _buffer.add(hit.record())


def buffer_push() -> int:
    """Push this process's waiting hits to Redis now (the flush does, and tests that read the queue)."""
    return _buffer.push()


@dataclass
class FlushResult:
    hits: int = 0
    events: int = 0


def hits_flush(now: float | None = None, settle: float = SETTLE_SECONDS) -> FlushResult:
    """Count every queued hit older than `settle` seconds. Safe to run at any time from any process: one flusher
    at a time (a Redis lock, or the database's lock on SQLite)."""
    now = time.time() if now is None else now
    client = redis_client()
    result = FlushResult()
    buffer_push()
    if client is None:
        while True:
            with transaction.atomic():
                rows = list(PendingHit.objects.filter(created_at__lt=now - settle).order_by("id")[:BATCH])
                if not rows:
                    return result
                context = [QueuedHit.parse(r.record) for r in PendingHit.objects.filter(created_at__gte=now - settle)]
                _count([QueuedHit.parse(r.record) for r in rows], [c for c in context if c], result)
                PendingHit.objects.filter(id__in=[r.id for r in rows]).delete()
    lock = client.lock(LOCK_KEY, timeout=60, blocking_timeout=0)
    if not lock.acquire(blocking=False):
        return result
    try:
        while True:
            records = client.lrange(QUEUE_KEY, 0, BATCH - 1)
            parsed = [QueuedHit.parse(r) for r in records]
            ready = 0
            for hit in parsed:
                if hit is not None and hit.at >= now - settle:
                    break
                ready += 1
            if not ready:
                return result
            _count([h for h in parsed[:ready] if h], [h for h in parsed[ready:] if h], result)
            client.ltrim(QUEUE_KEY, ready, -1)
            if ready < BATCH:
                return result
    finally:
        lock.release()


def _count(hits: list[QueuedHit], context: list[QueuedHit], result: FlushResult) -> None:
    if not hits:
        return
    issues = {
        pk: (started, mode, newsletter_id)
        for pk, started, mode, newsletter_id in Issue.objects.filter(pk__in={h.issue_id for h in hits}).values_list(
            "pk", "started_at", "tracking_mode", "newsletter_id"
        )
    }
    sizes = dict(
        Link.objects.filter(issue_id__in=issues).values("issue_id").annotate(n=Count("id")).values_list("issue_id", "n")
    )
    judged = verdicts(hits, context, sizes)
    tallies: Counter[tuple[int, int, int, int, int]] = Counter()
    per_reader: list[tuple[QueuedHit, Verdict]] = []
    for hit, verdict in zip(hits, judged, strict=True):
        issue = issues.get(hit.issue_id)
        if issue is None or issue[1] not in (TrackingMode.AGGREGATE, TrackingMode.PER_READER):
            continue
        started = issue[0].timestamp() if issue[0] else hit.at
        hour = min(TIMELINE_HOURS, max(0, int((hit.at - started) // 3600)))
        tallies[(hit.issue_id, hit.number, hit.variant, int(verdict), hour)] += 1
        if hit.delivery_id and issue[1] == TrackingMode.PER_READER:
            per_reader.append((hit, verdict))
    with transaction.atomic():
        _tally_add(tallies)
        result.events += _events_write(per_reader, issues)
    result.hits += len(hits)


def _tally_add(tallies: Counter) -> None:
    if not tallies:
        return
    table = Tally._meta.db_table
    rows = [(*key, count) for key, count in tallies.items()]
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(
                f"""INSERT INTO {table} (issue_id, link_number, variant, verdict, hour, count) VALUES {values}
                    ON CONFLICT (issue_id, link_number, variant, verdict, hour)
                    DO UPDATE SET count = {table}.count + excluded.count""",
                [value for row in chunk for value in row],
            )


def _events_write(per_reader: list[tuple[QueuedHit, Verdict]], issues: dict) -> int:
    """Events of per-reader hits whose delivery is the token's issue's and whose reader still agrees."""
    if not per_reader:
        return 0
    rows = Delivery.objects.filter(pk__in={h.delivery_id for h, _ in per_reader}, subscriber__isnull=False)
    found = {
        pk: (issue_id, subscriber_id)
        for pk, issue_id, subscriber_id in rows.values_list("pk", "issue_id", "subscriber_id")
    }
    deliveries = {pk: issue_id for pk, (issue_id, _s) in found.items()}
    subscribers = {pk: subscriber_id for pk, (_i, subscriber_id) in found.items()}
    agreed = set(
        ReaderConsent.objects.filter(subscriber_id__in=set(subscribers.values())).values_list(
            "subscriber_id", "newsletter_id"
        )
    )
    events = []
    for hit, verdict in per_reader:
        if deliveries.get(hit.delivery_id) != hit.issue_id:
            continue
        subscriber_id = subscribers[hit.delivery_id]
        if (subscriber_id, issues[hit.issue_id][2]) not in agreed:
            continue  # withdrawn since the message was sent: counted, not linked to them
        events.append(
            Event(
                issue_id=hit.issue_id,
                delivery_id=hit.delivery_id,
                subscriber_id=subscriber_id,
                link_number=hit.number,
                variant=hit.variant,
                verdict=int(verdict),
                at=datetime.fromtimestamp(hit.at, tz=UTC),
            )
        )
    _uniques_add(events)
    Event.objects.bulk_create(events)
    return len(events)


def _uniques_add(events: list[Event]) -> None:
    """Count the readers these (not yet written) events make new: a first human open, a first human click on a
    link, a first human click at all. Read against the deliveries' existing events, in one query."""
    humans = [e for e in events if e.verdict == Verdict.HUMAN]
    if not humans:
        return
    seen = set(
        Event.objects.filter(delivery_id__in={e.delivery_id for e in humans}, verdict=Verdict.HUMAN).values_list(
            "delivery_id", "link_number"
        )
    )
    seen |= {(delivery, UniqueTally.ANY_CLICK) for delivery, number in list(seen) if number != OPEN}
    counts: Counter[tuple[int, int, int]] = Counter()
    for event in humans:
        keys = [event.link_number] + ([UniqueTally.ANY_CLICK] if event.link_number != OPEN else [])
        for number in keys:
            if (event.delivery_id, number) not in seen:
                seen.add((event.delivery_id, number))
                counts[(event.issue_id, event.variant, number)] += 1
    table = UniqueTally._meta.db_table
    rows = [(*key, n) for key, n in counts.items()]
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            cursor.execute(
                f"""INSERT INTO {table} (issue_id, variant, link_number, count) VALUES
                    {", ".join(["(%s, %s, %s, %s)"] * len(chunk))}
                    ON CONFLICT (issue_id, variant, link_number)
                    DO UPDATE SET count = {table}.count + excluded.count""",
                [value for row in chunk for value in row],
            )
