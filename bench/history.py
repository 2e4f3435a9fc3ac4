"""A ledger with history for `bench send --history`: 1,000,000 subscribers of another newsletter and 5,000,000
delivery rows of its five earlier issues, so the send is measured against tables the size a running service has.

Seeding takes minutes, so it is done once into a template database, "<bench name>_history", and each run clones
it (CREATE DATABASE … TEMPLATE, a file copy). The template is migrated before every clone, so new migrations
reach it without a re-seed; changing RECIPE below re-seeds. Rows are generated inside PostgreSQL
(INSERT … SELECT over generate_series): no Python per row, the cheapest bulk load there is.

    python -m bench.history DATABASE_URL   # (re)seed that database; `bench send --history` calls it for you
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
SUBSCRIBERS = 1_000_000
ISSUES = 5
RECIPE = f"masthead bench history v1: {SUBSCRIBERS} subscribers, {ISSUES} sent issues, one delivery each"
# Addresses of the history's readers, so an operator's import can overlap them (`member<n>@example.net`).
MEMBER_EMAIL = "member{}@example.net"


def _name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _with_name(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def _admin(url: str):
    import psycopg

    return psycopg.connect(_with_name(url, "postgres").replace("postgres://", "postgresql://", 1), autocommit=True)


def database_clone(bench_url: str, env: dict[str, str]) -> None:
    """Make the bench database a fresh copy of the history template, seeding the template first if needed."""
    template_url = _with_name(bench_url, _name(bench_url) + "_history")
    template = _name(template_url)
    with _admin(bench_url) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [template]
        ).fetchone()
        fresh = row is None or row[0] != RECIPE
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{template}"')
    _migrate(template_url, env)
    if fresh:
        started = time.monotonic()
        print(f"seeding the history template {template} once (later runs clone it) …", flush=True)
        subprocess.run([sys.executable, "-m", "bench.history", template_url], cwd=ROOT, env=env, check=True)
        with _admin(bench_url) as conn:
            conn.execute(f"COMMENT ON DATABASE \"{template}\" IS '{RECIPE}'")
        print(f"history seeded in {time.monotonic() - started:.0f} s", flush=True)
    started = time.monotonic()
    name = _name(bench_url)
    with _admin(bench_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for attempt in range(10):
            # An autovacuum worker still on the template makes CREATE … TEMPLATE fail; it leaves within seconds.
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [template],
            )
            try:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
                break
            except Exception:
                if attempt == 9:
                    raise
                time.sleep(1)
    print(f"cloned the history ({SUBSCRIBERS:,} subscribers, {SUBSCRIBERS * ISSUES:,} deliveries) "
          f"in {time.monotonic() - started:.1f} s", flush=True)  # fmt: skip


def _migrate(url: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env={**env, "DATABASE_URL": url}, check=True
    )


def seed() -> None:
    """Fill the configured (template) database: another newsletter, its readers, five sent issues, their ledger."""
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from newsletter.models import Issue, Newsletter

    newsletter = Newsletter.objects.create(
        name="The Archive Weekly",
        slug="archive-weekly",
        from_name="The Archive Weekly",
        from_email="weekly@news.example.org",
        postal_address="1 Press Row, Springfield",
    )
    year_ago = timezone.now() - timezone.timedelta(days=365)
    with connection.cursor() as cursor:
        started = time.monotonic()
        # One in fifty readers unsubscribed, one in 97 of every issue's deliveries failed: a ledger as it ends up.
        cursor.execute(
            "INSERT INTO subscribers_subscriber (email, name, status, token, source, language, confirmed_at, "
            "soft_bounces, created_at, updated_at) "
            "SELECT format(%s, g), 'Member ' || g, CASE WHEN g %% 50 = 0 THEN 'unsubscribed' ELSE 'active' END, "
            "md5('member' || g)::uuid, 'history', '', %s, 0, %s, %s FROM generate_series(1, %s) g",
            [MEMBER_EMAIL.replace("{}", "%s"), year_ago, year_ago, year_ago, SUBSCRIBERS],
        )
        cursor.execute(
            "INSERT INTO subscribers_subscription (subscriber_id, newsletter_id, status, created_at, updated_at) "
            "SELECT id, %s, CASE WHEN status = 'active' THEN 'active' ELSE 'unsubscribed' END, created_at, "
            "created_at FROM subscribers_subscriber WHERE source = 'history'",
            [newsletter.pk],
        )
        print(f"  {SUBSCRIBERS:,} subscribers and subscriptions: {time.monotonic() - started:.0f} s", flush=True)
        for n in range(ISSUES):
            sent_at = year_ago + timezone.timedelta(days=7 * n)
            issue = Issue.objects.create(
                newsletter=newsletter,
                subject=f"Archive issue {n + 1}",
                status=Issue.Status.SENT,
                frozen_subject=f"Archive issue {n + 1}",
                frozen_html="<p>sent long ago</p>",
                frozen_text="sent long ago",
                frozen_at=sent_at,
                started_at=sent_at,
                finished_at=sent_at,
            )
            started = time.monotonic()
            # One claim token per 200 rows, as batches claim them; a message id on every sent row.
            cursor.execute(
                "INSERT INTO newsletter_delivery (issue_id, subscriber_id, status, attempts, claim_token, sent_at, "
                "message_id, error_code, error_text, updated_at) "
                "SELECT %s, id, CASE WHEN id %% 97 = 0 THEN 'failed' ELSE 'sent' END, 1, "
                "md5(%s || '-' || (id / 200))::uuid, %s, "
                "CASE WHEN id %% 97 = 0 THEN '' ELSE '<' || %s || '.' || id || '@news.example.org>' END, "
                "CASE WHEN id %% 97 = 0 THEN '550' ELSE '' END, '', %s "
                "FROM subscribers_subscriber WHERE source = 'history'",
                [issue.pk, str(issue.pk), sent_at, str(issue.pk), sent_at],
            )
            print(f"  issue {n + 1}: {SUBSCRIBERS:,} deliveries: {time.monotonic() - started:.0f} s", flush=True)
    connection.close()
    import psycopg

    settings = connection.settings_dict
    with psycopg.connect(
        dbname=settings["NAME"], host=settings["HOST"], port=settings["PORT"] or 5432, user=settings["USER"],
        password=settings["PASSWORD"], autocommit=True,
    ) as conn:  # fmt: skip
        started = time.monotonic()
        conn.execute("VACUUM (ANALYZE, FREEZE)")
        print(f"  vacuum and analyse: {time.monotonic() - started:.0f} s", flush=True)


if __name__ == "__main__":
    os.environ["DATABASE_URL"] = sys.argv[1]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    seed()
