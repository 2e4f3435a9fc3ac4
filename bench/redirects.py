"""Redirect benchmark: tracked-link clicks per second under gunicorn (2 workers) with wrk, then the flush.

    python -m bench redirects [--seconds 10] [--connections 16] [--links 20] [--readers 1000] [--django]

Each request is a different reader's click on one of the issue's links (tokens made as the sending workers make
them). The fast path (engagement/fastpath.py) answers them; `--django` measures the same clicks through Django's
whole stack instead (config.wsgi:django_application). After the load, the flush counts the queued hits and the
benchmark checks that every click wrk made was counted, and prints how long the flush took.

Needs PostgreSQL (DATABASE_URL) and Redis (CELERY_BROKER_URL); works in "<name>_bench_redirects", recreated.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.api import _free_port, _wait_for_port
from bench.send import _cpu_seconds, _env, _fail, _recreate_database, _tree

ROOT = Path(__file__).resolve().parent.parent

WRK_SCRIPT = """
local paths = {%(paths)s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1], {["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"})
end
"""


def seed(links: int, readers: int) -> tuple[int, list[str]]:
    from django.utils import timezone

    from engagement import tokens
    from engagement.models import Link
    from newsletter.models import Issue, Newsletter, TrackingMode

    newsletter = Newsletter.objects.create(
        name="Bench", slug="bench", from_name="Bench", from_email="bench@news.example.org", postal_address="1 Row"
    )
    now = timezone.now()
    issue = Issue.objects.create(
        newsletter=newsletter, subject="Bench", status=Issue.Status.SENT, frozen_subject="Bench", frozen_html="<p>",
        frozen_text="", frozen_at=now, started_at=now, tracking_mode=TrackingMode.AGGREGATE,
    )  # fmt: skip
    Link.objects.bulk_create(
        Link(issue=issue, number=n, url=f"https://news.example.org/story-{n}?utm_source=brief")
        for n in range(1, links + 1)
    )
    sent = int(time.time()) - 3600
    paths = []
    for reader in range(readers):
        part = tokens.reader_part(issue.pk, reader % 2, sent + reader % 60)
        number = random.randint(1, links)
        paths.append(f"/r/{tokens.link_part(issue.pk, number)}.{part}")
    return issue.pk, paths


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench redirects", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (gthread: keep-alive); 1: sync")
    parser.add_argument("--links", type=int, default=20)
    parser.add_argument("--readers", type=int, default=1000, help="distinct tokens wrk cycles through")
    parser.add_argument("--django", action="store_true", help="through Django's stack instead of the fast path")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        return _fail("The redirect benchmark needs wrk (apt-get install wrk).")
    database_url = os.environ.get("DATABASE_URL", "")
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")) or not broker.startswith("redis://"):
        return _fail("The redirect benchmark needs PostgreSQL and Redis: set DATABASE_URL and CELERY_BROKER_URL.")
    parts = urlsplit(database_url)
    bench_url = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_bench_redirects"))
    env = _env(bench_url, broker, 1025, ALLOWED_HOSTS="127.0.0.1,localhost", SECURE_SSL_REDIRECT="false")
    os.environ.update({k: v for k, v in env.items() if k != "LOG_LEVEL"})
    _recreate_database(bench_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)

    import django

    django.setup()
    from django.db import connection
    from django.db.models import Sum

    from engagement.models import Tally
    from engagement.services import hits

    issue_id, paths = seed(args.links, args.readers)
    connection.close()
    client = hits.redis_client()
    client.delete(hits.QUEUE_KEY)

    port = _free_port()
    app = "config.wsgi:django_application" if args.django else "config.wsgi:application"
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", app, "--workers", str(args.workers), "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning", "--backlog", "2048",
         *(["--worker-class", "gthread", "--threads", str(args.threads)] if args.threads > 1 else [])],
        cwd=ROOT, env=env,
    )  # fmt: skip
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} cores")
    kind = f"gthread workers x {args.threads} threads" if args.threads > 1 else "sync workers"
    print(f"gunicorn {app}, {args.workers} {kind}; wrk 2 threads, {args.connections} connections, "
          f"{args.readers:,} distinct tokens over {args.links} links")  # fmt: skip
    script = WRK_SCRIPT % {"paths": ",".join(f'"{p}"' for p in paths)}
    try:
        _wait_for_port(port, gunicorn)
        warm = subprocess.run(["wrk", "-t1", "-c2", "-d2s", f"http://127.0.0.1:{port}{paths[0]}"], capture_output=True)
        warm.check_returncode()
        client.delete(hits.QUEUE_KEY)
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
            lua.write(script)
        cpu_before = sum(_cpu_seconds(p) for p in _tree(gunicorn.pid))
        cmd = ["wrk", "-t2", f"-c{args.connections}", f"-d{args.seconds}s", "--latency", "-s", lua.name]
        out = subprocess.run([*cmd, f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True).stdout
        cpu = sum(_cpu_seconds(p) for p in _tree(gunicorn.pid)) - cpu_before
        Path(lua.name).unlink(missing_ok=True)
    finally:
        gunicorn.terminate()
        gunicorn.wait(30)
    print(out.strip())
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    count = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    queued = client.llen(hits.QUEUE_KEY)
    started = time.perf_counter()
    flushed = hits.hits_flush(now=time.time() + 60).hits
    flush_seconds = time.perf_counter() - started
    counted = Tally.objects.filter(issue_id=issue_id).aggregate(n=Sum("count"))["n"] or 0
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"redirects: {rate:,.0f}/s ({count:,} in {args.seconds} s, non-3xx {bad.group(1) if bad else 0}); "
          f"gunicorn CPU {1000 * cpu / max(count, 1):.3f} ms per redirect")  # fmt: skip
    per_second = flushed / max(flush_seconds, 1e-9)
    print(f"flush: {flushed:,} hits counted in {flush_seconds:.2f} s ({per_second:,.0f} hits/s); "
          f"queued {queued:,}, in the counts {counted:,}")  # fmt: skip
    if counted != queued:
        print("MISMATCH: not every queued click was counted", file=sys.stderr)
        return 1
    return 0
