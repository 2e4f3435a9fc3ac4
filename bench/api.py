"""API benchmark: requests per second for a subscriber read and an article upsert under gunicorn with 2 workers
(wrk when installed, else a bounded Python client; loopback only), and webhook events delivered per second by
real Celery workers to a local receiver.

    python -m bench api [--seconds 10] [--connections 8] [--events 2000] [--webhook-workers 2]

Needs PostgreSQL (DATABASE_URL) and Redis (CELERY_BROKER_URL). It works in its own database, "<name>_bench_api",
recreated on each run, so your data is never touched.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.send import Workers, _cpu_seconds, _env, _fail, _purge_queues, _recreate_database, _tree

ROOT = Path(__file__).resolve().parent.parent
SUBSCRIBERS = 10_000
ARTICLE = {
    "headline": "Council approves the harbour ferry budget",
    "dek": "Three new boats by spring.",
    "byline": "Amara Okafor",
    "section": "City Hall",
    "body_html": "<p>" + "The council voted on Thursday to fund the ferries. " * 20 + "</p>",
    "key_facts": ["The vote was 7 to 2.", "Three boats.", "Service starts in April."],
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("gunicorn exited early")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not start listening")


def _warm_up(port: int, token: str) -> None:
    """Both gunicorn workers import Django lazily on their first requests: make those before measuring."""
    for _ in range(20):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/api/v1/newsletters/", headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        response.read()
        conn.close()
        if response.status != 200:
            raise RuntimeError(f"the API answered {response.status} while warming up")


def seed() -> tuple[str, str]:
    """A newsletter, SUBSCRIBERS active readers and a superuser's token. Returns (token, an address to read)."""
    from django.contrib.auth import get_user_model

    from api.services.tokens import api_token_create
    from newsletter.models import Newsletter
    from subscribers.models import Subscriber, Subscription

    newsletter = Newsletter.objects.create(
        name="Bench", slug="bench", from_name="Bench", from_email="bench@example.org", postal_address="-"
    )
    people = Subscriber.objects.bulk_create(
        Subscriber(email=f"reader{n}@example.com", name=f"Reader {n}", status="active") for n in range(SUBSCRIBERS)
    )
    Subscription.objects.bulk_create(Subscription(subscriber=p, newsletter=newsletter) for p in people)
    user = get_user_model().objects.create_superuser("bench", "bench@example.org", "bench-password-not-used")
    _token, raw = api_token_create(user, "bench")
    return raw, f"reader{SUBSCRIBERS // 2}@example.com"


# --- load ---------------------------------------------------------------------------------------------------------

WRK_UPSERT = """
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
local body = [[%(body)s]]
request = function()
  return wrk.format("PUT", "/api/v1/articles/bench-" .. math.random(1, 500), nil, body)
end
"""


def _wrk(url: str, token: str, seconds: float, connections: int, script: str | None) -> tuple[float, str]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-H", f"Authorization: Bearer {token}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        if script:
            lua.write(script)
    try:
        if script:
            cmd += ["-s", lua.name]
        out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    finally:
        Path(lua.name).unlink(missing_ok=True)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    count = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p99 = re.search(r"99%\s+(\S+)", out)
    return rate, count, f"p99 {p99.group(1) if p99 else '?'}, non-2xx {errors.group(1) if errors else 0}"


def _python_client(port: int, path: str, token: str, requests: int, connections: int, body: dict | None):
    """Bounded fallback without wrk: `connections` keep-alive connections in threads, `requests` in all."""
    per_thread = max(1, requests // connections)
    failures = []

    def run(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for i in range(per_thread):
            target = path if body is None else f"/api/v1/articles/bench-{(n * per_thread + i) % 500}"
            conn.request("GET" if body is None else "PUT", target, json.dumps(body) if body else None, headers)
            response = conn.getresponse()
            response.read()
            if response.status >= 300:
                failures.append(response.status)
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(n,)) for n in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return (
        per_thread * connections / elapsed,
        f"python client, {per_thread * connections} requests, non-2xx {len(failures)}",
    )


# --- webhook receiver ---------------------------------------------------------------------------------------------


def _receiver(port: int, counter) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with counter.get_lock():
                counter.value += 1
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


# --- main ---------------------------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench api", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per load run (wrk)")
    parser.add_argument("--requests", type=int, default=3000, help="per load run (the Python client, without wrk)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--events", type=int, default=2000, help="webhook events to deliver")
    parser.add_argument("--webhook-workers", type=int, default=2, help="worker processes delivering webhooks")
    args = parser.parse_args(argv)

    database_url = os.environ.get("DATABASE_URL", "")
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")) or not broker.startswith("redis://"):
        return _fail(
            "The API benchmark needs PostgreSQL and Redis: set DATABASE_URL=postgres://… and CELERY_BROKER_URL=redis://…."
        )
    parts = urlsplit(database_url)
    bench_url = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_bench_api"))
    env = _env(
        bench_url,
        broker,
        1025,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false",
        API_RATE_PER_TOKEN="100000000/m",
        WEBHOOK_ALLOW_PRIVATE_URLS="true",
    )
    os.environ.update({k: v for k, v in env.items() if k != "LOG_LEVEL"})
    _recreate_database(bench_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)

    import django

    django.setup()
    from django.db import connection, transaction

    token, address = seed()
    connection.close()

    port = _free_port()
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--workers", "2", "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    use_wrk = shutil.which("wrk") is not None
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    print(f"gunicorn, 2 workers; load: {'wrk' if use_wrk else 'Python client'}, {args.connections} connections; "
          f"{SUBSCRIBERS:,} subscribers; machine: {os.cpu_count()} cores")  # fmt: skip
    try:
        _wait_for_port(port, gunicorn)
        _warm_up(port, token)
        read_path = f"/api/v1/subscribers/lookup?email={address}"
        body = json.dumps(ARTICLE)
        runs = [("subscriber read (GET /subscribers/lookup)", read_path, None),
                ("article upsert (PUT /articles/{external_id})", "/api/v1/articles/", ARTICLE)]  # fmt: skip
        for label, path, payload in runs:
            cpu_before = sum(_cpu_seconds(p) for p in _tree(gunicorn.pid))
            if use_wrk:
                script = WRK_UPSERT % {"token": token, "body": body} if payload else None
                rate, count, detail = _wrk(
                    f"http://127.0.0.1:{port}{path}", token, args.seconds, args.connections, script
                )
            else:
                rate, count, detail = _python_client(port, path, token, args.requests, args.connections, payload)
            cpu = sum(_cpu_seconds(p) for p in _tree(gunicorn.pid)) - cpu_before
            per_request = 1000 * cpu / max(count, 1)
            print(f"{label:<46} {rate:>8,.0f} requests/s  {per_request:.2f} ms gunicorn CPU per request  "
                  f"({count:,} requests, {detail})")  # fmt: skip
    finally:
        gunicorn.terminate()
        gunicorn.wait(30)

    # Webhooks: events recorded in one transaction, delivered by real workers to a local receiver.
    from api.models import WebhookDelivery, WebhookEndpoint
    from api.webhooks.outbox import events_record

    counter = multiprocessing.Value("i", 0)
    receiver_port = _free_port()
    receiver = multiprocessing.Process(target=_receiver, args=(receiver_port, counter), daemon=True)
    receiver.start()
    WebhookEndpoint.objects.create(url=f"http://127.0.0.1:{receiver_port}/hook")
    _purge_queues()
    workers = Workers(env, args.webhook_workers)
    cpu_before = workers.cpu()
    started = time.monotonic()
    with transaction.atomic():
        for n in range(args.events):
            events_record("subscriber.confirmed", {"id": n, "email": f"reader{n}@example.com", "status": "active"})
    recorded = time.monotonic() - started
    try:
        while WebhookDelivery.objects.filter(status="delivered").count() < args.events:
            if time.monotonic() - started > 600:
                return _fail("webhooks: gave up after 10 minutes")
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        cpu = workers.cpu() - cpu_before
    finally:
        workers.stop()
        receiver.terminate()
    print(f"webhook events: {args.events:,} recorded in {recorded:.2f} s; delivered (receiver got {counter.value:,}) "
          f"in {elapsed:.1f} s → {args.events / elapsed:,.0f} events/s with {args.webhook_workers} worker processes; "
          f"{1000 * cpu / args.events:.2f} ms worker CPU per event")  # fmt: skip
    return 0
