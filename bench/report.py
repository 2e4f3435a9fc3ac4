"""Report benchmark: the engagement report of one issue with 1,000,000 deliveries and 200,000 per-reader events,
rendered by the admin page (the same view an editor opens), cold and warm, and its CSV.

    python -m bench report [--deliveries 1000000] [--events 200000] [--links 30] [--runs 5]

Seeds with INSERT … SELECT generate_series (a minute or two), ANALYZE and VACUUM (as autovacuum would have by the
time anyone reads a report), then times the page through Django's test client as a logged-in editor, with the cache
cleared before every request: first counting every delivery live, then as a finished issue's report reads it
(the delivery figures from the snapshot beat takes every five minutes; the engagement figures always live).

Needs PostgreSQL (DATABASE_URL); works in "<name>_bench_report", recreated on each run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bench.send import _env, _fail, _recreate_database

ROOT = Path(__file__).resolve().parent.parent


def seed(deliveries: int, events: int, links: int) -> int:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from engagement.models import Link
    from newsletter.models import Article, Issue, IssueArticle, Newsletter, TrackingMode

    now = timezone.now()
    started = now - timezone.timedelta(days=3)
    newsletter = Newsletter.objects.create(
        name="Bench", slug="bench", from_name="Bench", from_email="bench@news.example.org", postal_address="1 Row",
        tracking_mode=TrackingMode.PER_READER, tracking_pixel=True,
    )  # fmt: skip
    issue = Issue.objects.create(
        newsletter=newsletter, subject="Bench", status=Issue.Status.SENT, frozen_subject="Bench issue",
        frozen_html="<p>", frozen_text="", frozen_at=started, started_at=started, finished_at=started,
        tracking_mode=TrackingMode.PER_READER, tracking_pixel=True,
    )  # fmt: skip
    articles = []
    for n in range(10):
        article = Article.objects.create(
            headline=f"Story {n}: the council and the harbour", slug=f"s{n}", canonical_url=f"https://ex.org/{n}"
        )
        IssueArticle.objects.create(issue=issue, article=article, position=n)
        articles.append(article)
    Link.objects.bulk_create(
        Link(issue=issue, number=n, url=f"https://ex.org/{n - 1}" if n <= 10 else f"https://ex.org/more/{n}",
             article=articles[n - 1] if n <= 10 else None, label=f"Link {n}")
        for n in range(1, links + 1)
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO subscribers_subscriber (email, name, status, token, source, confirmed_at, soft_bounces,
                   created_at, updated_at, language)
               SELECT 'r' || g || '@example.com', '', 'active', md5(g::text)::uuid, 'form', %s, 0, %s, %s, 'en'
               FROM generate_series(1, %s) g""",
            [started, started, started, deliveries],
        )
        cursor.execute("SELECT min(id) FROM subscribers_subscriber")
        first = cursor.fetchone()[0]
        cursor.execute(
            """INSERT INTO newsletter_delivery (issue_id, subscriber_id, status, attempts, message_id, error_code,
                   error_text, updated_at, sent_at, bounce_kind, bounce_code, bounce_text, bounced_at, complained_at,
                   variant)
               SELECT %s, s.id, CASE WHEN s.id %% 200 = 0 THEN 'failed' ELSE 'sent' END, 1,
                   '<' || s.id || '@bench>', '', '', %s, %s,
                   CASE WHEN s.id %% 97 = 0 THEN 'hard' WHEN s.id %% 89 = 0 THEN 'soft' ELSE '' END, '', '', NULL,
                   CASE WHEN s.id %% 1999 = 0 THEN %s::timestamptz END, (s.id %% 2)
               FROM subscribers_subscriber s""",
            [issue.pk, started, started, started],
        )
        cursor.execute(
            """INSERT INTO engagement_event (issue_id, delivery_id, subscriber_id, link_number, variant, verdict, at)
               SELECT %s, d.id, d.subscriber_id, (g %% %s), d.variant, CASE WHEN g %% 5 = 0 THEN 1 ELSE 0 END,
                   %s::timestamptz + (g %% 172800) * interval '1 second'
               FROM generate_series(1, %s) g JOIN newsletter_delivery d ON d.subscriber_id = %s + (g * 7) %% %s""",
            [issue.pk, links + 1, started, events, first, deliveries],
        )
        # What the flush keeps as the events are written: distinct readers per link, opened, clicked anything.
        cursor.execute(
            """INSERT INTO engagement_uniquetally (issue_id, variant, link_number, count)
               SELECT issue_id, variant, link_number, count(DISTINCT delivery_id) FROM engagement_event
               WHERE verdict = 0 GROUP BY issue_id, variant, link_number
               UNION ALL
               SELECT issue_id, variant, -1, count(DISTINCT delivery_id) FROM engagement_event
               WHERE verdict = 0 AND link_number > 0 GROUP BY issue_id, variant"""
        )
        cursor.execute(
            """INSERT INTO engagement_tally (issue_id, link_number, variant, verdict, hour, count)
               SELECT %s, l, v, verdict, h, 1 + (l * 7 + h * 3 + verdict) %% 50
               FROM generate_series(0, %s) l, generate_series(0, 1) v, generate_series(0, 3) verdict,
                    generate_series(0, 48) h""",
            [issue.pk, links],
        )
        cursor.execute(
            """INSERT INTO subscribers_consentevent (kind, source, policy_version, consent_text, ip_address,
                   user_agent, detail, created_at, newsletter_id, subscriber_id)
               SELECT 'unsubscribe', 'link', '', '', '', '', '', %s::timestamptz + g * interval '1 minute', %s,
                   %s + g * 300
               FROM generate_series(1, 2000) g""",
            [started, newsletter.pk, first],
        )
    get_user_model().objects.create_superuser("bench", "bench@example.org", "bench")
    return issue.pk


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--links", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        return _fail("The report benchmark needs PostgreSQL: set DATABASE_URL=postgres://….")
    parts = urlsplit(database_url)
    bench_url = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_bench_report"))
    broker = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    env = _env(
        bench_url, broker, 1025, ALLOWED_HOSTS="testserver,localhost", SECURE_SSL_REDIRECT="false",
        CACHE_URL="locmemcache://",
    )  # fmt: skip
    os.environ.update({k: v for k, v in env.items() if k != "LOG_LEVEL"})
    _recreate_database(bench_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)

    import django

    django.setup()
    from django.conf import settings
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client

    from engagement.services.report import snapshots_refresh

    started = time.perf_counter()
    issue_id = seed(args.deliveries, args.events, args.links)
    connection.close()
    with psycopg.connect(urlunsplit(urlsplit(bench_url)._replace(scheme="postgresql")), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    print(f"seeded {args.deliveries:,} deliveries, {args.events:,} events in {time.perf_counter() - started:.0f} s; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} cores")  # fmt: skip
    # The admin's CSS through plain static storage: no collectstatic manifest needed for a benchmark.
    settings.STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"
    client = Client()
    client.login(username="bench", password="bench")
    pages = [
        ("report page", f"/admin/engagement/issue/{issue_id}/"),
        ("CSV", f"/admin/engagement/issue/{issue_id}/csv/"),
    ]
    client.get(pages[0][1])  # imports, template compilation

    def timed(label: str, path: str, mode: str) -> None:
        times = []
        for _ in range(args.runs):
            cache.clear()  # never the cache: every figure read from the database
            begin = time.perf_counter()
            response = client.get(path)
            times.append(1000 * (time.perf_counter() - begin))
            assert response.status_code == 200, response.status_code
        print(f"{label:<12} {mode:<44} median {statistics.median(times):7.1f} ms, max {max(times):7.1f} ms "
              f"({args.runs} runs)")  # fmt: skip

    for label, path in pages:
        timed(label, path, "live (no snapshot: every delivery counted)")
    started = time.perf_counter()
    refreshed = snapshots_refresh()
    print(f"snapshot of the finished issue (beat, every 5 min): {refreshed} in {time.perf_counter() - started:.2f} s")
    for label, path in pages:
        timed(label, path, "finished issue (its snapshot)")
    return 0
