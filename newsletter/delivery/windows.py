"""Send windows: when each reader may get an issue, in their own time zone.

An issue with a local time (e.g. 07:00) reaches every reader at the next 07:00 of their zone at or after the send
started; an issue with a window (e.g. 07:00–21:00; 21:00–07:00 wraps past midnight) reaches readers inside it at
once and the others when it next opens for them. Readers with no time zone use the site's TIME_ZONE.

Built on the ledger: materialise writes the rows of readers whose time has not come as `deferred` with
`next_attempt_at` set to it (ledger._wait_local_sql: a CASE over the chunk's zones). Nothing else is new: a
deferred row is claimable only once due, a chain that finds nothing due sets the send's `wake_at` to the earliest,
and recovery wakes it then. Rows waiting for their local time are the deferred rows never attempted.
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import datetime, time, timedelta

from django.conf import settings

from newsletter.models import Issue


@functools.cache
def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name or settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def _at(day, at: time, zone: zoneinfo.ZoneInfo) -> datetime:
    """`at` on `day` in `zone`; a time skipped by a daylight-saving change resolves to just after it."""
    return datetime.combine(day, at, tzinfo=zone)


def _next(at: time, local_now: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """The first `at` in `zone` at or after `local_now`."""
    candidate = _at(local_now.date(), at, zone)
    if candidate < local_now:
        candidate = _at(local_now.date() + timedelta(days=1), at, zone)
    return candidate


def _inside(start: time, end: time, now: time) -> bool:
    return start <= now < end if start < end else now >= start or now < end


def release_at(issue: Issue, zone_name: str, started: datetime) -> datetime | None:
    """When a reader in `zone_name` may get the issue whose send started at `started`: an aware datetime in the
    future, or None for "at once"."""
    if not issue.has_send_window:
        return None
    zone = _zone(zone_name)
    local_now = started.astimezone(zone)
    if issue.local_time is not None:
        when = _next(issue.local_time, local_now, zone)
    elif _inside(issue.window_start, issue.window_end, local_now.time()):
        return None
    else:
        when = _next(issue.window_start, local_now, zone)
    return when if when > started else None
