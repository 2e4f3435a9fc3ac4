"""Sending rate limits shared by every worker: token buckets in Redis (all machines) or in a locked file (one machine).

Limits (newsletter/conf.py): RATE_PER_SECOND (burst: one second's worth), RATE_PER_HOUR (burst: one
minute's worth, so an hour never carries more than N plus a minute's worth) and RATE_PER_DOMAIN_PER_MINUTE
(per recipient domain, burst: ten seconds' worth). 0 disables a limit. Workers take tokens in small chunks, so
the shared store sees a few requests per second rather than one per message.
"""

from __future__ import annotations

import fcntl
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import redis
from django.conf import settings

from newsletter.conf import app_settings


@dataclass(frozen=True)
class Bucket:
    key: str
    rate: float  # tokens per second
    burst: float  # capacity


# All buckets are checked and charged atomically: grant = min(available), every bucket pays it.
_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local want = tonumber(ARGV[1])
local grant = want
local tokens = {}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i]); local burst = tonumber(ARGV[2 * i + 1])
  local v = redis.call('HMGET', key, 'tokens', 'ts')
  local have = tonumber(v[1]) or burst
  local ts = tonumber(v[2]) or now
  have = math.min(burst, have + math.max(0, now - ts) * rate / 1000)
  tokens[i] = have
  local whole = math.floor(have)
  if whole < grant then grant = whole end
end
if grant < 0 then grant = 0 end
local wait = 0
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i]); local burst = tonumber(ARGV[2 * i + 1])
  local left = tokens[i] - grant
  redis.call('HSET', key, 'tokens', tostring(left), 'ts', tostring(now))
  redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
  if left < 1 then
    local w = math.ceil((1 - left) * 1000 / rate)
    if w > wait then wait = w end
  end
end
return {grant, wait}
"""


class RedisBuckets:
    def __init__(self, url: str):
        self.client = redis.Redis.from_url(url)
        self.script = self.client.register_script(_LUA)

    def take(self, buckets: list[Bucket], want: int) -> tuple[int, float]:
        args: list = [want]
        for bucket in buckets:
            args += [bucket.rate, bucket.burst]
        grant, wait_ms = self.script(keys=[b.key for b in buckets], args=args)
        return int(grant), int(wait_ms) / 1000


class FileBuckets:
    """The same algorithm in a JSON file under an exclusive flock: shared by the processes of one machine."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "buckets.json"
        self.path.touch(exist_ok=True)

    def take(self, buckets: list[Bucket], want: int) -> tuple[int, float]:
        with open(self.path, "r+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                state = json.loads(handle.read() or "{}")
            except ValueError:
                state = {}
            now = time.time()
            have = {}
            grant = want
            for b in buckets:
                tokens, ts = state.get(b.key, (b.burst, now))
                have[b.key] = min(b.burst, tokens + max(0.0, now - ts) * b.rate)
                grant = min(grant, math.floor(have[b.key]))
            grant = max(0, grant)
            wait = 0.0
            for b in buckets:
                left = have[b.key] - grant
                state[b.key] = (left, now)
                if left < 1:
                    wait = max(wait, (1 - left) / b.rate)
            # Drop buckets idle long enough to be full again, so per-domain keys don't pile up.
            state = {k: v for k, v in state.items() if now - v[1] < 3600}
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(state))
        return grant, wait


@lru_cache(maxsize=1)
def _store():
    url = getattr(settings, "REDIS_URL", "")
    if url:
        return RedisBuckets(url)
    return FileBuckets(app_settings.VAR_DIR / "ratelimit")


def _scope() -> str:
    """Buckets belong to the sending backend: two installations on one Redis but different relays don't share."""
    return f"masthead:rate:{settings.EMAIL_BACKEND.rsplit('.', 2)[-2]}:{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"


def global_buckets() -> list[Bucket]:
    buckets = []
    per_second = float(app_settings.RATE_PER_SECOND or 0)
    per_hour = float(app_settings.RATE_PER_HOUR or 0)
    if per_second > 0:
        buckets.append(Bucket(f"{_scope()}:second", per_second, max(1.0, per_second)))
    if per_hour > 0:
        buckets.append(Bucket(f"{_scope()}:hour", per_hour / 3600, max(1.0, per_hour / 60)))
    return buckets


def domain_bucket(domain: str) -> Bucket | None:
    per_minute = float(app_settings.RATE_PER_DOMAIN_PER_MINUTE or 0)
    if per_minute <= 0:
        return None
    return Bucket(f"{_scope()}:domain:{domain.lower()}", per_minute / 60, max(1.0, per_minute / 6))


def tokens_take(buckets: list[Bucket], want: int) -> tuple[int, float]:
    """Take up to `want` tokens from every bucket at once. Returns (granted, seconds until one more is likely)."""
    if not buckets or want <= 0:
        return want, 0.0
    return _store().take(buckets, want)


# The longest sleep between two looks at the buckets (and, for a waiting batch, at the status).
WAIT_SLICE_SECONDS = 1.0


class Throttle:
    """A worker's view of the global limits: takes tokens in chunks (a tenth of a second's worth), sleeps when
    the shared buckets are empty. `acquire()` returns False only when `deadline` would pass while waiting."""

    def __init__(self) -> None:
        self.buckets = global_buckets()
        per_second = float(app_settings.RATE_PER_SECOND or 0)
        self.chunk = max(1, int(per_second / 10)) if per_second else 50
        self.banked = 0

    @property
    def active(self) -> bool:
        return bool(self.buckets)

    def acquire(self, remaining: int, deadline: float, should_stop: Callable[[], bool] | None = None) -> bool:
        """One token. While waiting for it, `should_stop` (a pause or cancel) is asked once a second of waiting;
        True ends the wait. Returns False when the wait ended that way or `deadline` would pass."""
        if not self.buckets:
            return True
        waited = 0.0
        while self.banked <= 0:
            granted, wait = tokens_take(self.buckets, min(self.chunk, max(1, remaining)))
            self.banked += granted
            if granted:
                break
            if time.monotonic() + wait > deadline:
                return False
            pause = min(max(wait, 0.005), WAIT_SLICE_SECONDS)
            time.sleep(pause)
            waited += pause
            if should_stop is not None and waited >= WAIT_SLICE_SECONDS:
                waited = 0.0
                if should_stop():
                    return False
        self.banked -= 1
        return True

    def release_unused(self) -> None:
        """Tokens taken but not used are simply dropped: the bucket refills, and overshooting is never possible."""
        self.banked = 0


def domain_allows(domain: str) -> float:
    """0 when a message to `domain` may go now, else the seconds to wait (the caller defers the message)."""
    bucket = domain_bucket(domain)
    if bucket is None:
        return 0.0
    granted, wait = tokens_take([bucket], 1)
    return 0.0 if granted else max(wait, 1.0)
