"""Delivery benchmark: one issue to N subscribers through real Celery workers, Redis and PostgreSQL, into a lean
SMTP sink; and, in the same run, the bare-smtplib baseline (prebuilt messages, 4 persistent connections, 4
processes) for the ratio.

    python -m bench send [--recipients 100000] [--workers 2] [--baseline-seconds 8]

Needs PostgreSQL (DATABASE_URL) and Redis (CELERY_BROKER_URL). It works in its own database, "<name>_bench",
recreated on each run, so your data is never touched.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


def _bench_database_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_bench"))


def _recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres", scheme="postgresql"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _env(database_url: str, broker: str, port: int, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "READ_DOT_ENV": "false",
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-secret-key-" + "x" * 40,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker,
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "MAIL_DOMAIN": "news.example.org",
        "SITE_URL": "https://news.example.org",
    }
    env.update(extra)
    return env


# --- seeding ----------------------------------------------------------------------------------------------------


def seed(recipients: int):
    """N active, subscribed readers via COPY, one newsletter, one issue of about 37 KB rendered. Returns the issue."""
    from django.db import connection
    from django.utils import timezone

    from newsletter.models import Article, Issue, IssueArticle, Newsletter

    newsletter = Newsletter.objects.create(
        name="Bench Brief",
        slug="bench-brief",
        from_name="The Bench Brief",
        from_email="brief@news.example.org",
        reply_to="desk@news.example.org",
        postal_address="1 Press Row, Springfield",
    )
    issue = Issue.objects.create(newsletter=newsletter, subject="Bench: the council votes", intro="Good morning. " * 20)
    for n in range(7):  # about 37 KB rendered, the size the targets are stated for
        article = Article.objects.create(
            headline=f"Story {n}: the council weighs a budget that grows by three per cent",
            slug=f"story-{n}",
            dek="What changed, why it matters, and what happens next for the people of the city. " * 4,
            canonical_url=f"https://news.example.org/2026/story-{n}",
            key_facts=[f"Fact {k}: the vote is on Thursday and the budget grows by 3 %." for k in range(5)],
            bottom_line="Watch the vote; the outcome decides next year's services. " * 3,
        )
        IssueArticle.objects.create(issue=issue, article=article, position=n)
    now = timezone.now().isoformat()
    started = time.monotonic()
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(
            "COPY subscribers_subscriber (email, name, status, token, source, language, confirmed_at, soft_bounces, "
            "created_at, updated_at) FROM STDIN"
        ) as copy:
            for n in range(recipients):
                copy.write_row(
                    (f"reader{n}@example.com", f"Reader {n}", "active", _uuid(n), "bench", "", now, 0, now, now)
                )
        cursor.execute(
            "INSERT INTO subscribers_subscription (subscriber_id, newsletter_id, status, created_at, updated_at) "
            "SELECT id, %s, 'active', now(), now() FROM subscribers_subscriber",
            [newsletter.pk],
        )
        cursor.execute("ANALYZE")
    print(f"seeded {recipients:,} subscribers in {time.monotonic() - started:.1f} s")
    return issue


def _uuid(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-{n:012x}"


# --- the bare smtplib baseline ------------------------------------------------------------------------------------


def _baseline_worker(port: int, message: bytes, seconds: float, result) -> None:
    smtp = smtplib.SMTP("127.0.0.1", port)
    smtp.ehlo()
    sent = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _ in range(50):
            smtp.sendmail("brief@news.example.org", ["reader@example.com"], message, ["BODY=8BITMIME"])
        sent += 50
    smtp.quit()
    with result.get_lock():
        result.value += sent


def baseline(port: int, message: bytes, seconds: float, connections: int = 4) -> float:
    """Messages/s of a bare smtplib loop: prebuilt bytes, `connections` persistent connections, one process each."""
    total = multiprocessing.Value("Q", 0)
    processes = [
        multiprocessing.Process(target=_baseline_worker, args=(port, message, seconds, total))
        for _ in range(connections)
    ]
    started = time.monotonic()
    for p in processes:
        p.start()
    for p in processes:
        p.join()
    return total.value / (time.monotonic() - started)


# --- measuring worker processes -----------------------------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for child in Path(f"/proc/{pid}/task").glob("*/children"):
        for c in child.read_text().split():
            pids += _tree(int(c))
    return pids


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Workers:
    def __init__(self, env: dict[str, str], processes: int):
        self.log = tempfile.NamedTemporaryFile(prefix="bench-worker-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel=WARNING", "--without-gossip",
                "--without-mingle", "--without-heartbeat", f"--concurrency={processes}", "-Q", "bulk,default",
                "-n", f"bench-{os.getpid()}@%h",
            ],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while len(_tree(self.proc.pid)) < processes + 1:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(Path(self.log.name).read_text())
            time.sleep(0.2)
        time.sleep(1.0)  # let the consumers attach
        self.peak_rss = 0.0
        self.peak_total_rss = 0.0

    def sample(self) -> None:
        rss = [_rss_mb(p) for p in _tree(self.proc.pid)]
        if rss:
            self.peak_rss = max(self.peak_rss, max(rss))
            self.peak_total_rss = max(self.peak_total_rss, sum(rss))

    def cpu(self) -> float:
        return sum(_cpu_seconds(p) for p in _tree(self.proc.pid))

    def stop(self) -> None:
        import signal

        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        Path(self.log.name).unlink(missing_ok=True)


def _purge_queues() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        for queue in ("default", "bulk", "priority"):
            with contextlib.suppress(Exception):  # a queue never declared has nothing to purge
                conn.default_channel.queue_purge(queue)


# --- main ---------------------------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench send", description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="worker processes (concurrency)")
    parser.add_argument("--baseline-seconds", type=float, default=8.0)
    parser.add_argument("--batch", type=int, default=None, help="SEND_BATCH_SIZE for the workers")
    parser.add_argument("--chains", type=int, default=None, help="SEND_CHAINS for the workers")
    parser.add_argument(
        "--sync-commit", action="store_true", help="wait for the WAL flush on every outcome (SEND_ASYNC_COMMIT=false)"
    )
    args = parser.parse_args(argv)

    database_url = os.environ.get("DATABASE_URL", "")
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")) or not broker.startswith("redis://"):
        return _fail(
            "The delivery benchmark needs PostgreSQL and Redis: set DATABASE_URL=postgres://… and "
            "CELERY_BROKER_URL=redis://… (the embedded SQLite + filesystem broker default is not what it measures)."
        )
    bench_url = _bench_database_url(database_url)
    from bench.sink import Sink

    sink = Sink()
    extra = {}
    if args.batch:
        extra["SEND_BATCH_SIZE"] = str(args.batch)
    if args.chains:
        extra["SEND_CHAINS"] = str(args.chains)
    if args.sync_commit:
        extra["SEND_ASYNC_COMMIT"] = "false"
    env = _env(bench_url, broker, sink.port, **extra)
    os.environ.update({k: v for k, v in env.items() if k not in ("LOG_LEVEL",)})
    _recreate_database(bench_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)

    import django

    django.setup()
    from django.db import connection

    from newsletter.delivery.batch import skeleton_for
    from newsletter.delivery.messages import Recipient, personalise
    from newsletter.models import Issue
    from newsletter.services import sending
    from newsletter.services.rendering import issue_freeze

    issue = seed(args.recipients)
    _purge_queues()

    # The baseline sends this issue's real message, prebuilt: the same bytes the workers send.
    preview = Issue.objects.select_related("newsletter").get(pk=issue.pk)
    issue_freeze(preview)
    message = personalise(skeleton_for(preview), Recipient(1, "reader@example.com", "Reader", _uuid(1))).data
    print(f"message size: {len(message) / 1024:.1f} KB; machine: {os.cpu_count()} cores")
    base_rate = baseline(sink.port, message, args.baseline_seconds)
    print(f"bare smtplib, 4 connections / 4 processes: {base_rate:,.0f} msg/s")
    sink.reset()

    workers = Workers(env, args.workers)
    cpu_before = workers.cpu()
    connection.close()
    started = time.monotonic()
    sending.issue_send_now(Issue.objects.get(pk=issue.pk))
    first_message = None
    last_print = started
    while True:
        workers.sample()
        now = time.monotonic()
        if first_message is None and sink.count:
            first_message = now
        status = Issue.objects.filter(pk=issue.pk).values_list("status", flat=True).first()
        if status == Issue.Status.SENT:
            break
        if now - last_print >= 5:
            print(f"  {now - started:6.1f} s  {sink.count:>9,} sent  {sink.count / (now - started):,.0f} msg/s")
            last_print = now
        if now - started > 3600:
            return _fail("gave up after an hour")
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    worker_cpu = workers.cpu() - cpu_before
    delivered = sink.count
    workers.stop()
    sink.stop()
    rate = delivered / elapsed
    send_rate = delivered / (elapsed - (first_message - started)) if first_message else 0
    print()
    print(f"recipients:               {args.recipients:,} (delivered to sink: {delivered:,})")
    print(f"end to end:               {elapsed:.1f} s  →  {rate:,.0f} msg/s (materialising included)")
    print(f"from the first message:   {send_rate:,.0f} msg/s (materialising took {first_message - started:.1f} s)")
    print(f"worker CPU per message:   {1000 * worker_cpu / delivered:.3f} ms (all worker processes)")
    print(f"peak worker RSS:          {workers.peak_rss:.0f} MB per process, {workers.peak_total_rss:.0f} MB all")
    print(f"bare smtplib baseline:    {base_rate:,.0f} msg/s")
    ratio, send_ratio = 100 * rate / base_rate, 100 * send_rate / base_rate
    print(f"ratio to the baseline:    {ratio:.0f} % end to end, {send_ratio:.0f} % sending")
    return 0 if delivered == args.recipients else 1
