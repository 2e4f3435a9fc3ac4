"""The shared rate limits, against the real stores: Redis (every machine) and the flock'd file (one machine).

Several processes take tokens at once as fast as they are granted; every grant is timestamped. The property is an
upper bound: in any window of W seconds a token bucket of rate r and burst b grants at most b + r·W, whatever the
number of takers. A limiter that is not shared, or not atomic, breaks it by a multiple. (A small allowance covers
the gap between the store's decision and the taker reading its clock.) End to end, the same bound read the other
way: K messages at R per second cannot all be sent in less than K/R − 1 seconds.
"""

import multiprocessing
import time
import uuid
from dataclasses import replace

import pytest
from django.conf import settings as django_settings

from newsletter.delivery import ratelimit
from newsletter.delivery.ratelimit import Bucket, FileBuckets, RedisBuckets
from newsletter.models import Delivery, Issue
from newsletter.services import sending
from tests.factories import issue_to_send, subscribers_bulk

RUN_SECONDS = 2.5
TAKERS = 4
SLACK_SECONDS = 0.25  # decision-to-timestamp delay allowed per window (scheduling on a busy 2-core box)


def _taker(store_spec, buckets, want, start_at, stop_at, results):
    """A process taking tokens in a loop until stop_at, as Throttle does; reports (time, granted) per grant."""
    kind, where = store_spec
    store = RedisBuckets(where) if kind == "redis" else FileBuckets(where)
    grants = []
    while time.time() < start_at:
        time.sleep(0.001)
    while time.time() < stop_at:
        granted, wait = store.take(buckets, want)
        if granted:
            grants.append((time.time(), granted))
        else:
            time.sleep(min(max(wait, 0.001), 0.05))
    results.put(grants)


def run_takers(store_spec, buckets, want: int = 3, takers: int = TAKERS) -> list[tuple[float, int]]:
    context = multiprocessing.get_context("fork")  # the store is built in the child: no shared socket or file
    results = context.Queue()
    start_at = time.time() + 0.3
    processes = [
        context.Process(target=_taker, args=(store_spec, buckets, want, start_at, start_at + RUN_SECONDS, results))
        for _ in range(takers)
    ]
    for process in processes:
        process.start()
    grants = [g for _ in processes for g in results.get(timeout=60)]
    for process in processes:
        process.join(timeout=10)
    return sorted(grants)


def max_in_window(grants: list[tuple[float, int]], window: float) -> int:
    """The most tokens granted in any window [t, t + window) starting at a grant."""
    best = 0
    for i, (start, _) in enumerate(grants):
        best = max(best, sum(n for t, n in grants[i:] if t < start + window))
    return best


def assert_bucket_bound(grants, bucket: Bucket) -> None:
    assert grants, "nothing was granted at all"
    for window in (0.5, 1.0, 2.0):
        bound = bucket.burst + bucket.rate * (window + SLACK_SECONDS)
        assert max_in_window(grants, window) <= bound, (window, max_in_window(grants, window), bound)
    # Refills happen: more than the initial burst over the run (a limiter stuck at zero would pass the bound).
    assert sum(n for _, n in grants) > bucket.burst


@pytest.fixture(params=["redis", "file"])
def store_spec(request, tmp_path, require):
    if request.param == "redis":
        url = getattr(django_settings, "REDIS_URL", "")
        require(bool(url), "Redis (CELERY_BROKER_URL=redis://…)")
        return ("redis", url)
    return ("file", tmp_path / "ratelimit")


def unique(buckets: list[Bucket]) -> list[Bucket]:
    """Fresh keys, so no earlier run's state (Redis keys live until they expire) affects this one."""
    tag = uuid.uuid4().hex[:8]
    return [replace(b, key=f"{b.key}:test-{tag}") for b in buckets]


def test_per_second_limit_holds_across_processes(settings, store_spec):
    settings.MASTHEAD = {**settings.MASTHEAD, "RATE_PER_SECOND": 40, "RATE_PER_HOUR": 0}
    buckets = unique(ratelimit.global_buckets())
    assert [(b.rate, b.burst) for b in buckets] == [(40.0, 40.0)]
    assert_bucket_bound(run_takers(store_spec, buckets), buckets[0])


def test_per_hour_limit_holds_across_processes_alongside_the_per_second_one(settings, store_spec):
    # 3,600 an hour: 1 a second, a burst of one minute's worth (60). The per-second limit (1,000) never binds, so
    # the grants must follow the hour bucket: both are charged atomically for every grant.
    settings.MASTHEAD = {**settings.MASTHEAD, "RATE_PER_SECOND": 1000, "RATE_PER_HOUR": 3600}
    buckets = unique(ratelimit.global_buckets())
    second, hour = buckets
    assert (hour.rate, hour.burst) == (1.0, 60.0)
    grants = run_takers(store_spec, buckets)
    assert_bucket_bound(grants, hour)
    assert sum(n for _, n in grants) <= hour.burst + hour.rate * (RUN_SECONDS + 1)


def test_per_domain_limit_holds_per_domain(settings, store_spec):
    # 120 a minute: 2 a second, a burst of ten seconds' worth (20). Two domains each get their own bucket.
    settings.MASTHEAD = {**settings.MASTHEAD, "RATE_PER_DOMAIN_PER_MINUTE": 120}
    (gmail,) = unique([ratelimit.domain_bucket("GMAIL.com")])
    (other,) = unique([ratelimit.domain_bucket("example.net")])
    assert gmail.key.split(":domain:")[1].startswith("gmail.com:") and (gmail.rate, gmail.burst) == (2.0, 20.0)
    grants = run_takers(store_spec, [gmail], want=1)
    assert_bucket_bound(grants, gmail)
    # The other domain's bucket is untouched by all that: its whole burst is there at once.
    kind, where = store_spec
    store = RedisBuckets(where) if kind == "redis" else FileBuckets(where)
    assert store.take([other], 100) == (20, pytest.approx(0.5, abs=0.01))


def test_domain_allows_defers_once_the_domain_bucket_is_empty(settings, tmp_path):
    settings.MASTHEAD = {**settings.MASTHEAD, "RATE_PER_DOMAIN_PER_MINUTE": 6}  # burst 1, then one per 10 s
    settings.EMAIL_PORT = 40000 + uuid.uuid4().int % 20000  # a scope of its own for this test's buckets
    ratelimit._store.cache_clear()
    try:
        assert ratelimit.domain_allows("example.org") == 0.0
        wait = ratelimit.domain_allows("example.org")
        assert 1.0 <= wait <= 10.0
        assert ratelimit.domain_allows("example.com") == 0.0
    finally:
        ratelimit._store.cache_clear()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_two_workers_together_never_exceed_the_rate(celery_worker, smtp_server, settings, wait_for):
    """K messages at R a second: the burst is one second's worth, so the sends span at least K/R − 1 seconds,
    whatever the number of workers. Two processes that each kept their own bucket would take about 2 s, not 5."""
    rate, count = 20, 120
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, count)
    env = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp_server.port), "RATE_PER_SECOND": str(rate)}
    env["SEND_BATCH_SIZE"] = "10"  # many small batches: both workers really share the send
    celery_worker(queues="default,bulk", concurrency=1, env=env)
    celery_worker(queues="default,bulk", concurrency=1, env=env)
    sending.issue_send_now(issue)

    def finished():
        issue.refresh_from_db()
        return issue.status == Issue.Status.SENT

    wait_for(finished, timeout=120, what="the rate-limited send to finish")
    sent = list(Delivery.objects.filter(issue=issue, status="sent").values_list("sent_at", flat=True))
    assert len(sent) == count and len(smtp_server.messages) == count
    spread = (max(sent) - min(sent)).total_seconds()
    # K/R − 1 holds for the grants; sent_at is written after each SMTP transaction, so the first and last stamps
    # each lag their grant by a few milliseconds, not equally: the same allowance as the window bound.
    assert spread >= count / rate - 1 - SLACK_SECONDS, spread
    # Sorted send times obey the bucket bound in every one-second window too.
    times = sorted(t.timestamp() for t in sent)
    assert max_in_window([(t, 1) for t in times], 1.0) <= rate + rate * (1 + SLACK_SECONDS)
