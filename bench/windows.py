"""What a send window costs where it does its work: materialising an issue's delivery rows, without a window,
at a local time and inside a window, for N readers spread over the world's time zones.

    python -m bench windows [--recipients 200000] [--zones 24]

Needs PostgreSQL (DATABASE_URL). It works in its own database, "<name>_bench", recreated on each run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import time as clock

from bench.send import ROOT, _bench_database_url, _env, _fail, _recreate_database, seed

ZONES = [
    "Pacific/Honolulu", "America/Anchorage", "America/Los_Angeles", "America/Denver", "America/Chicago",
    "America/New_York", "America/Sao_Paulo", "Atlantic/Azores", "UTC", "Europe/London", "Europe/Madrid",
    "Europe/Athens", "Europe/Moscow", "Asia/Dubai", "Asia/Karachi", "Asia/Kolkata", "Asia/Kathmandu",
    "Asia/Dhaka", "Asia/Bangkok", "Asia/Shanghai", "Asia/Tokyo", "Australia/Adelaide", "Australia/Sydney",
    "Pacific/Auckland",
]  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench windows")
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--zones", type=int, default=len(ZONES), help="readers spread over this many zones")
    args = parser.parse_args(argv)
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        return _fail("The windows benchmark needs PostgreSQL: set DATABASE_URL=postgres://…")
    bench_url = _bench_database_url(database_url)
    env = _env(bench_url, os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"), 25)
    os.environ.update({k: v for k, v in env.items() if k not in ("LOG_LEVEL",)})
    _recreate_database(bench_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)

    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from bench.issues import issue_create, newsletter_create
    from newsletter.delivery.ledger import deliveries_materialise
    from newsletter.models import Delivery, Issue, SendRun
    from newsletter.services.rendering import issue_freeze

    newsletter = newsletter_create()
    seed(newsletter, args.recipients)
    zones = ZONES[: max(1, min(args.zones, len(ZONES)))]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE subscribers_subscriber SET time_zone = (%s::text[])[1 + id %% %s]", [zones, len(zones)])
        cursor.execute("ANALYZE subscribers_subscriber")
    print(f"{args.recipients:,} readers over {len(zones)} time zones; load {os.getloadavg()[0]:.1f}")

    modes = {"at once": {}, "local time 07:00": {"local_time": clock(7)}, "window 07:00–21:00": {
        "window_start": clock(7), "window_end": clock(21)}}  # fmt: skip
    for name, fields in modes.items():
        issue = issue_create(newsletter)
        issue_freeze(issue)
        now = timezone.now()
        Issue.objects.filter(pk=issue.pk).update(
            status=Issue.Status.SENDING, started_at=now, frozen_at=now, frozen_subject=issue.subject,
            frozen_html=issue.frozen_html, frozen_text=issue.frozen_text, **fields,
        )  # fmt: skip
        SendRun.objects.create(issue=issue, heartbeat_at=now)
        started = time.monotonic()
        while deliveries_materialise(issue.pk, budget_seconds=3600) is not None:
            pass
        seconds = time.monotonic() - started
        waiting = Delivery.objects.filter(issue=issue, status=Delivery.Status.DEFERRED).count()
        print(
            f"{name:>20}: materialised {args.recipients:,} rows in {seconds:.2f} s "
            f"({args.recipients / seconds:,.0f} rows/s), {waiting:,} waiting for local time"
        )
    return 0
