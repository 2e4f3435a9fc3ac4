"""Benchmark: messages per second through the inbound service (what `receive_mail` runs per message) and through
the inbound SMTP server (`manage.py inbound_smtp` in its own process, fed over persistent SMTP connections).

    python -m bench inbound [--messages N] [--connections N]

Runs against a throwaway database created beside the configured one (DATABASE_URL, or SQLite), dropped
afterwards. The mix is what a large send gets back: 70 % hard bounces (RFC 3464 DSNs), 15 % soft bounces, 5 %
feedback-loop complaints (ARF), 5 % auto-replies and 5 % non-standard (qmail) bounces, each for its own delivery.
Each message is attributed, recorded and acted on (suppression, ledger, delivery row) before the next is read.
Besides messages per second it prints the CPU each message cost (this process, or the server process), the
figure that holds on a shared machine where the wall-clock rate depends on the neighbours.
"""

import argparse
import os
import smtplib
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "subscribers" / "inbound"
MIX = [("gmail_dsn.eml", 14), ("gmail_over_quota.eml", 3), ("yahoo_arf.eml", 1), ("out_of_office.eml", 1),
       ("qmail.eml", 1)]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _messages(deliveries, bounce_address) -> list[tuple[str, bytes]]:
    templates = {name: (FIXTURES / name).read_text() for name, _ in MIX}
    cycle = [name for name, weight in MIX for _ in range(weight)]
    out = []
    for i, (pk, email, message_id) in enumerate(deliveries):
        name = cycle[i % len(cycle)]
        verp = bounce_address(pk)
        text = templates[name].replace("{{VERP}}", verp).replace("{{RCPT}}", email).replace("{{MSGID}}", message_id)
        text = text.replace("{{UNIQUE}}", f"bench{i}").replace("{{RCPT_LOCAL}}", email.partition("@")[0])
        # Each message its own Message-ID, as real bounces have (the fixtures share theirs).
        text = f"Message-ID: <bench-{i}@bounces.bench>\n" + "\n".join(
            line for line in text.split("\n") if not line.lower().startswith("message-id:")
        )
        recipient = "fbl@bench.example" if name == "yahoo_arf.eml" else verp
        out.append((recipient, text.replace("\n", "\r\n").encode()))
    return out


def _seed(count: int, start: int):
    from django.utils import timezone

    from newsletter.models import Delivery, Issue, Newsletter
    from subscribers.models import Subscriber, Subscription

    newsletter, _ = Newsletter.objects.get_or_create(
        slug="bench", defaults={"name": "Bench", "from_name": "Bench", "from_email": "b@bench.example",
                                "postal_address": "-"}
    )  # fmt: skip
    now = timezone.now()
    issue = Issue.objects.create(
        newsletter=newsletter, subject=f"Bench {start}", status=Issue.Status.SENT, frozen_subject="Bench",
        frozen_html="<p>x</p>", frozen_text="x", frozen_at=now, started_at=now, finished_at=now,
    )  # fmt: skip
    subscribers = Subscriber.objects.bulk_create(
        [Subscriber(email=f"r{n}@bench.example", status=Subscriber.Status.ACTIVE) for n in range(start, start + count)]
    )
    if subscribers[0].pk is None:
        subscribers = list(Subscriber.objects.filter(email__in=[s.email for s in subscribers]))
    Subscription.objects.bulk_create([Subscription(subscriber=s, newsletter=newsletter) for s in subscribers])
    Delivery.objects.bulk_create(
        [Delivery(issue=issue, subscriber=s, status=Delivery.Status.SENT, sent_at=now) for s in subscribers]
    )
    rows = Delivery.objects.filter(issue=issue).values_list("pk", "subscriber__email")
    return [(pk, email, f"<bench.{pk}@bench.example>") for pk, email in rows]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _database_url(connection) -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000, help="messages per door")
    parser.add_argument("--connections", type=int, default=2, help="SMTP client connections at once")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    for name, value in {"BOUNCE_DOMAIN": "bounces.bench", "INBOUND_ADDRESSES": "fbl@bench.example",
                        "INBOUND_RATE_PER_MINUTE": "0", "LOG_LEVEL": "WARNING"}.items():  # fmt: skip
        os.environ[name] = value
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment

    from subscribers.links import bounce_address
    from subscribers.models import MailEvent, QuarantinedMail, Subscriber
    from subscribers.services.inbound import inbound_receive

    setup_test_environment()
    db = connection.settings_dict
    name = (
        f"{db['NAME']}_bench_inbound" if connection.vendor != "sqlite" else str(settings.VAR_DIR / "bench-in.sqlite3")
    )
    db["TEST"] = {**db.get("TEST", {}), "NAME": name}
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        print(
            f"{connection.vendor}, {args.messages:,} messages per door, mix: " + ", ".join(f"{n} ×{w}" for n, w in MIX)
        )
        messages = _messages(_seed(args.messages, 0), bounce_address)
        started, cpu = time.perf_counter(), time.process_time()
        outcomes = [inbound_receive(raw, recipient=rcpt) for rcpt, raw in messages]
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        refused = sum(1 for o in outcomes if not o.accepted)
        print(
            f"{'service (receive_mail)':>24}: {elapsed:6.2f} s  {len(messages) / elapsed:>7,.0f} msg/s  "
            f"{cpu / len(messages) * 1000:5.2f} ms CPU/msg  ({refused} refused)"
        )

        messages = _messages(_seed(args.messages, args.messages), bounce_address)
        port = _free_port()
        env = {**os.environ, "DATABASE_URL": _database_url(connection), "READ_DOT_ENV": "false"}
        server = subprocess.Popen(
            [sys.executable, "manage.py", "inbound_smtp", "--port", str(port)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120  # Django's start-up on a busy machine
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("the inbound SMTP server did not start") from None
                    time.sleep(0.2)
            errors: list[str] = []

            def client(part: list[tuple[str, bytes]]) -> None:
                try:
                    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
                        for rcpt, raw in part:
                            try:
                                smtp.sendmail("", [rcpt], raw)
                            except smtplib.SMTPException as exc:
                                errors.append(str(exc))
                except OSError as exc:
                    errors.append(f"connection: {exc}")

            parts = [messages[i :: args.connections] for i in range(args.connections)]
            threads = [threading.Thread(target=client, args=(part,)) for part in parts]
            started, server_cpu = time.perf_counter(), _cpu_seconds(server.pid)
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed, server_cpu = time.perf_counter() - started, _cpu_seconds(server.pid) - server_cpu
        finally:
            server.terminate()
            server.wait(timeout=10)
        print(
            f"{'SMTP server':>24}: {elapsed:6.2f} s  {len(messages) / elapsed:>7,.0f} msg/s  "
            f"{server_cpu / len(messages) * 1000:5.2f} ms CPU/msg  ({args.connections} connections, "
            f"{len(errors)} refused)"
        )
        print(
            f"recorded events: {MailEvent.objects.count():,}; suppressed: "
            f"{Subscriber.objects.filter(status=Subscriber.Status.SUPPRESSED).count():,}; "
            f"quarantined: {QuarantinedMail.objects.count():,}"
        )
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
