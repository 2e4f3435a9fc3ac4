"""Delivery benchmark: one issue to N subscribers through real Celery workers, Redis and PostgreSQL, into a lean
SMTP sink; and, in the same run, the bare-smtplib baseline (prebuilt messages, 4 persistent connections, 4
processes) for the ratio.

    python -m bench send [--recipients 100000] [--workers 2] [--baseline-seconds 8]
                         [--operator] [--issue-size 21|47] [--history] [--groups 2]

Modes: by default the recipients are seeded with COPY into an empty ledger. `--operator` takes the operator's
path instead: the list is imported as a CSV through the import service (what `import_subscribers` and the admin
call), and the issue is sent at once, as the admin's Send button does (`issue_send_now`), with no pause for the
database to catch up. `--history` runs against a ledger that already holds 5,000,000 delivery rows of earlier
issues and 1,000,000 subscribers of another newsletter (bench/history.py; seeded once, cloned per run).
`--groups N` runs N worker groups (node names of their own, each `--workers` processes) on the same PostgreSQL
and Redis, as separate machines would.

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


def _log_slow(url: str, ms: int) -> None:
    """Have PostgreSQL log the bench database's statements slower than `ms` (sessions opened from now on)."""
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres", scheme="postgresql"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{parts.path.lstrip("/")}" SET log_min_duration_statement = {int(ms)}')


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


def seed(newsletter, recipients: int) -> None:
    """N active, subscribed readers of `newsletter` via COPY, statistics fresh (the benchmark's historical mode)."""
    from django.db import connection
    from django.utils import timezone

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
            "SELECT id, %s, 'active', now(), now() FROM subscribers_subscriber WHERE source = 'bench'",
            [newsletter.pk],
        )
        cursor.execute("ANALYZE")
    print(f"seeded {recipients:,} subscribers with COPY in {time.monotonic() - started:.1f} s")


def write_csv(path: Path, recipients: int, members: int = 0) -> None:
    """The operator's export: `email,name`, one reader a row. The first `members` rows are readers the ledger
    already knows (the history's other newsletter: active ones only, so every row is mailable)."""
    from bench.history import MEMBER_EMAIL

    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("email,name\n")
        n = g = 0
        while n < members:
            g += 1
            if g % 50:  # the history unsubscribed every fiftieth member
                f.write(f"{MEMBER_EMAIL.format(g)},Member {g}\n")
                n += 1
        for i in range(recipients - members):
            f.write(f"reader{i}@example.com,Reader {i}\n")


def import_csv(newsletter, recipients: int, members: int) -> None:
    """Import the list through the import service, as `import_subscribers` does; print its time and report."""
    from subscribers.services.importing import subscribers_import

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "list.csv"
        write_csv(path, recipients, members)
        started = time.monotonic()
        with path.open("rb") as stream:
            report = subscribers_import(
                stream, newsletter, source_detail="bench", consent_text="Bench list: consent attested."
            )
        elapsed = time.monotonic() - started
    print(
        f"imported the CSV through the import service in {elapsed:.1f} s ({recipients / elapsed:,.0f} rows/s): "
        f"{report.imported:,} new, {report.added:,} known readers added, {len(report.rejected):,} rejected"
    )
    if report.accepted != recipients:
        raise RuntimeError(f"the import accepted {report.accepted:,} of {recipients:,} rows: {report.rejected[:3]}")


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


def baseline(port: int, message: bytes, seconds: float, connections: int = 4) -> tuple[float, float]:
    """Messages/s of a bare smtplib loop: prebuilt bytes, `connections` persistent connections, one process each;
    and its client CPU per message in µs (the processes' user + system time)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_before = usage.ru_utime + usage.ru_stime
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
    elapsed = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    return total.value / elapsed, 1e6 * cpu / max(1, total.value)


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
    """One worker group: a `celery worker` (its node name) with `processes` pool processes, as the Procfile runs."""

    def __init__(self, env: dict[str, str], processes: int, name: str = "bench"):
        self.log = tempfile.NamedTemporaryFile(prefix="bench-worker-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel=WARNING", "--without-gossip",
                "--without-mingle", "--without-heartbeat", f"--concurrency={processes}", "-Q", "bulk,default",
                "-n", f"{name}-{os.getpid()}@%h",
            ],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.processes = processes
        self.peak_rss = 0.0
        self.peak_total_rss = 0.0

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while len(_tree(self.proc.pid)) < self.processes + 1:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(Path(self.log.name).read_text())
            time.sleep(0.2)

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


class Backends:
    """CPU of the PostgreSQL backends serving the bench database (the workers' connections), sampled while the
    send runs: a backend that appears after the start counts from zero."""

    def __init__(self, connection):
        self.connection = connection
        self.start: dict[int, float] = {}
        self.last: dict[int, float] = {}
        for pid in self._pids():
            self.start[pid] = self.last[pid] = _cpu_seconds(pid)

    def _pids(self) -> list[int]:
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return [pid for (pid,) in cursor.fetchall()]

    def sample(self) -> None:
        for pid in self._pids():
            cpu = _cpu_seconds(pid)
            if cpu:
                self.last[pid] = cpu

    def cpu(self) -> float:
        return sum(cpu - self.start.get(pid, 0.0) for pid, cpu in self.last.items())


def _recovery_pass_ms(runs: int = 5) -> float:
    """What beat's recovery costs on the ledger as the send left it (every query it runs, nothing to repair)."""
    from newsletter.delivery.recovery import issues_recover

    times = []
    for _ in range(runs):
        started = time.perf_counter()
        issues_recover()
        times.append(1000 * (time.perf_counter() - started))
    return sorted(times)[runs // 2]


def _load() -> str:
    return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


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
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="worker processes (per group)")
    parser.add_argument("--baseline-seconds", type=float, default=8.0)
    parser.add_argument("--batch", type=int, default=None, help="SEND_BATCH_SIZE for the workers")
    parser.add_argument("--chains", type=int, default=None, help="SEND_CHAINS for the workers")
    parser.add_argument(
        "--sync-commit", action="store_true", help="wait for the WAL flush on every outcome (SEND_ASYNC_COMMIT=false)"
    )
    parser.add_argument(
        "--operator", action="store_true", help="import the list as a CSV through the import service, send at once"
    )
    parser.add_argument(
        "--issue-size", type=int, choices=(21, 47), default=None, help="message size in KB (default: the 37 KB issue)"
    )
    parser.add_argument(
        "--history", action="store_true", help="a ledger already holding 5 M deliveries and 1 M other subscribers"
    )
    parser.add_argument("--groups", type=int, default=1, help="worker groups, each with its own node name")
    parser.add_argument(
        "--log-slow", type=int, default=None, metavar="MS", help="log statements slower than MS in the server log"
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
    if args.history:
        from bench.history import database_clone

        database_clone(bench_url, env)
    else:
        _recreate_database(bench_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    if args.log_slow is not None:
        _log_slow(bench_url, args.log_slow)

    import django

    django.setup()
    from django.db import connection

    from bench.issues import issue_create, newsletter_create
    from newsletter.delivery.batch import skeleton_for
    from newsletter.delivery.messages import Recipient, personalise
    from newsletter.models import Issue
    from newsletter.services import sending
    from newsletter.services.rendering import issue_freeze

    mode = "operator's path (CSV import, then send at once)" if args.operator else "COPY-seeded list"
    print(f"mode: {mode}{', with history' if args.history else ''}; {args.groups} worker group(s) of "
          f"{args.workers} process(es); {os.cpu_count()} cores; {_load()}")  # fmt: skip
    newsletter = newsletter_create()
    issue = issue_create(newsletter, args.issue_size)
    _purge_queues()

    # The baseline sends this issue's real message, prebuilt: the same bytes the workers send.
    preview = Issue.objects.select_related("newsletter").get(pk=issue.pk)
    issue_freeze(preview)
    message = personalise(skeleton_for(preview), Recipient(1, "reader@example.com", "Reader", _uuid(1))).data
    print(f"message size: {len(message) / 1024:.1f} KB")
    sink_before = _cpu_seconds(sink.process.pid)
    count_before = sink.count
    base_rate, base_cpu = baseline(sink.port, message, args.baseline_seconds)
    base_sink = 1e6 * (_cpu_seconds(sink.process.pid) - sink_before) / max(1, sink.count - count_before)
    print(
        f"bare smtplib, 4 connections / 4 processes: {base_rate:,.0f} msg/s, client CPU {base_cpu:.0f} µs and sink "
        f"CPU {base_sink:.0f} µs per message ({_load()})"
    )

    # The workers run before the list arrives, as they do in production.
    groups = [Workers(env, args.workers, name=f"bench{g + 1}") for g in range(args.groups)]
    for workers in groups:
        workers.wait_ready()
    if args.operator:
        import_csv(newsletter, args.recipients, members=args.recipients // 10 if args.history else 0)
    else:
        seed(newsletter, args.recipients)
    time.sleep(0.0 if args.operator else 1.0)  # the operator presses Send at once
    sink.reset()
    sink_cpu_before = _cpu_seconds(sink.process.pid)
    cpu_before = [w.cpu() for w in groups]
    backends = Backends(connection)
    load_start = _load()
    started = time.monotonic()
    sending.issue_send_now(Issue.objects.get(pk=issue.pk))
    first_message = None
    last_print = started
    while True:
        for workers in groups:
            workers.sample()
        backends.sample()
        now = time.monotonic()
        if first_message is None and sink.count:
            first_message = now
        status = Issue.objects.filter(pk=issue.pk).values_list("status", flat=True).first()
        if status == Issue.Status.SENT:
            break
        if now - last_print >= 5:
            peak = max(w.peak_rss for w in groups)
            print(
                f"  {now - started:6.1f} s  {sink.count:>9,} sent  {sink.count / (now - started):,.0f} msg/s  "
                f"peak worker RSS {peak:.0f} MB  ({_load()})"
            )
            last_print = now
        if now - started > 3600:
            return _fail("gave up after an hour")
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    worker_cpu = [w.cpu() - before for w, before in zip(groups, cpu_before, strict=True)]
    backends.sample()
    pg_cpu = backends.cpu()
    sink_cpu = _cpu_seconds(sink.process.pid) - sink_cpu_before
    delivered = sink.count
    load_end = _load()
    for workers in groups:
        workers.stop()
    recovery_ms = _recovery_pass_ms()
    sink.stop()
    rate = delivered / elapsed
    send_rate = delivered / (elapsed - (first_message - started)) if first_message else 0
    per = 1e6 / max(1, delivered)
    print()
    print(f"recipients:               {args.recipients:,} (delivered to sink: {delivered:,})")
    print(f"end to end:               {elapsed:.1f} s  →  {rate:,.0f} msg/s (materialising included)")
    print(f"from the first message:   {send_rate:,.0f} msg/s (first message after {first_message - started:.1f} s)")
    print(
        f"worker CPU per message:   {per * sum(worker_cpu):.0f} µs (all worker processes)"
        + (f"; per group: {', '.join(f'{per * c:.0f}' for c in worker_cpu)} µs" if len(groups) > 1 else "")
    )
    print(f"PostgreSQL CPU per msg:   {per * pg_cpu:.0f} µs (the bench database's backends)")
    print(f"sink CPU per message:     {per * sink_cpu:.0f} µs")
    peak = max(w.peak_rss for w in groups)
    print(f"peak worker RSS:          {peak:.0f} MB per process, {sum(w.peak_total_rss for w in groups):.0f} MB all")
    print(f"bare smtplib baseline:    {base_rate:,.0f} msg/s")
    ratio, send_ratio = rate / base_rate, send_rate / base_rate
    print(f"ratio to the baseline:    {ratio:.2f} end to end, {send_ratio:.2f} sending")
    print(f"recovery pass:            {recovery_ms:.1f} ms (median of 5, on this ledger)")
    print(f"load:                     {load_start} at the start, {load_end} at the end")
    return 0 if delivered == args.recipients else 1
