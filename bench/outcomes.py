"""How many outcome writes per second PostgreSQL sustains here: the worker's own "sent" write (OutcomeWriter, the
pipelined prepared UPDATE conditional on the claim token, `synchronous_commit = off`), from 1, 2 and 4 client
processes at once, with no SMTP in the way. It is the ceiling that adding worker machines runs into, and the
PostgreSQL CPU per write it prints is what the README's capacity model uses.

    python -m bench outcomes [--rows 200000] [--clients 1,2,4] [--sync-commit] [--history]

`--history` writes into a clone of `bench send --history`'s ledger (5,000,000 earlier deliveries), where each
write also maintains indexes of that size.

Needs PostgreSQL (DATABASE_URL); works in its own database "<name>_bench_outcomes", recreated each run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time
import uuid

from bench.send import ROOT, Backends, _env, _fail, _load, _recreate_database


def _bench_url(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_bench_outcomes"))


def _seed(rows: int, clients: int) -> tuple[int, list[tuple[str, int, int]]]:
    """An issue with `rows` deliveries in flight, split into one claim per client. Returns (issue id, claims)."""
    from django.db import connection
    from django.utils import timezone

    from bench.issues import newsletter_create
    from newsletter.models import Issue

    newsletter = newsletter_create()
    issue = Issue.objects.create(
        newsletter=newsletter, subject="Outcomes", status=Issue.Status.SENDING, frozen_subject="Outcomes",
        frozen_html="<p>x</p>", frozen_text="x", frozen_at=timezone.now(),
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO subscribers_subscriber (email, name, status, token, source, language, soft_bounces, "
            "created_at, updated_at) SELECT 'reader' || g || '@example.com', '', 'active', md5('r' || g)::uuid, "
            "'outcomes', '', 0, now(), now() FROM generate_series(1, %s) g",
            [rows],
        )
        cursor.execute(
            "INSERT INTO newsletter_delivery (issue_id, subscriber_id, status, attempts, message_id, error_code, "
            "error_text, updated_at, lease_until) SELECT %s, id, 'sending', 1, '', '', '', now(), "
            "now() + interval '1 hour' FROM subscribers_subscriber WHERE source = 'outcomes'",
            [issue.pk],
        )
        cursor.execute("SELECT min(id), max(id) FROM newsletter_delivery WHERE issue_id = %s", [issue.pk])
        low, high = cursor.fetchone()
        claims, per = [], (high - low + 1) // clients
        for c in range(clients):
            token, first, last = str(uuid.uuid4()), low + c * per, low + (c + 1) * per - 1
            cursor.execute(
                "UPDATE newsletter_delivery SET claim_token = %s WHERE id BETWEEN %s AND %s", [token, first, last]
            )
            claims.append((token, first, last))
        cursor.execute("ANALYZE")
    return issue.pk, claims


def _client(token: str, first: int, last: int, start, result) -> None:
    from django.db import connection

    from newsletter.delivery.outcomes import OutcomeWriter

    connection.ensure_connection()
    writer = OutcomeWriter(uuid.UUID(token))
    start.wait()
    cpu = time.process_time()
    for delivery_id in range(first, last + 1):
        writer.sent(delivery_id, f"<{delivery_id}@news.example.org>")
    writer.close()
    result.put(time.process_time() - cpu)
    connection.close()


def run(clients: int, rows: int) -> tuple[float, float, float]:
    """Writes/s, PostgreSQL backend CPU µs per write, client CPU µs per write."""
    from django.db import connection

    issue_id, claims = _seed(rows, clients)
    connection.close()
    ctx = multiprocessing.get_context("fork")
    start, result = ctx.Event(), ctx.Queue()
    processes = [ctx.Process(target=_client, args=(*claim, start, result)) for claim in claims]
    for p in processes:
        p.start()
    time.sleep(1.0)  # every client connected and prepared
    backends = Backends(connection)
    started = time.monotonic()
    start.set()
    while any(p.is_alive() for p in processes):
        backends.sample()
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    client_cpu = sum(result.get() for _ in processes)
    writes = sum(last - first + 1 for _, first, last in claims)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM newsletter_delivery WHERE issue_id = %s AND status = 'sent'", [issue_id])
        (sent,) = cursor.fetchone()
        cursor.execute("DELETE FROM newsletter_delivery WHERE issue_id = %s", [issue_id])
        cursor.execute("DELETE FROM subscribers_subscriber WHERE source = 'outcomes'")
        cursor.execute("DELETE FROM newsletter_issue WHERE id = %s", [issue_id])
        cursor.execute("DELETE FROM newsletter_newsletter WHERE slug = 'bench-brief'")
    assert sent == writes, f"{sent} of {writes} written"
    return writes / elapsed, 1e6 * backends.cpu() / writes, 1e6 * client_cpu / writes


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench outcomes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="writes per measurement (split among clients)")
    parser.add_argument("--clients", default="1,2,4", help="client process counts to measure")
    parser.add_argument("--sync-commit", action="store_true", help="wait for the WAL flush on every write")
    parser.add_argument("--history", action="store_true", help="into a ledger of 5 M earlier deliveries")
    args = parser.parse_args(argv)
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        return _fail("The outcome-write benchmark needs PostgreSQL: set DATABASE_URL=postgres://…")
    url = _bench_url(database_url)
    env = _env(url, os.environ.get("CELERY_BROKER_URL", "memory://"), 25)
    if args.sync_commit:
        env["SEND_ASYNC_COMMIT"] = "false"
    os.environ.update({k: v for k, v in env.items() if k != "LOG_LEVEL"})
    if args.history:
        from bench.history import database_clone

        database_clone(url, env)
    else:
        _recreate_database(url)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    import django

    django.setup()
    commit = "synchronous_commit on" if args.sync_commit else "synchronous_commit off (the default)"
    ledger = "a ledger of 5 M earlier deliveries" if args.history else "an empty ledger"
    print(f"outcome writes ({commit}) into {ledger}, {args.rows:,} per measurement; {os.cpu_count()} cores; "
          f"{_load()}")  # fmt: skip
    for clients in (int(c) for c in args.clients.split(",")):
        rate, pg, client = run(clients, args.rows)
        print(f"  {clients} client(s): {rate:>8,.0f} writes/s  PostgreSQL {pg:4.0f} µs/write  "
              f"client {client:4.0f} µs/write  ({_load()})")  # fmt: skip
    return 0
