"""Shared fixtures: real services where they are cheap (SMTP server, Celery worker process, headless Chromium).

On a developer's machine a test whose service or browser is missing is skipped, naming what is missing. In CI
(CI=true) a skip is a failure, so CI always proves the whole stack.
"""

import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import requests
from aiosmtpd.controller import Controller
from anymail.backends import test as anymail_test
from anymail.exceptions import AnymailRequestsAPIError
from anymail.message import AnymailRecipientStatus
from django.conf import settings
from django.db import connection

from engagement.services import hits, links

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _require(condition: bool, what: str) -> None:
    """Skip (or, in CI, fail) when a service the test needs is missing."""
    if not condition:
        if IN_CI:
            pytest.fail(f"{what} is required in CI")
        pytest.skip(f"{what} is not available")


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if IN_CI and reporter and reporter.stats.get("skipped"):
        reporter.write_line(f"CI: {len(reporter.stats['skipped'])} test(s) skipped; in CI every test must run.")
        session.exitstatus = 1


# --- SMTP ------------------------------------------------------------------------------------------------------


@dataclass
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)


@dataclass
class RecordingHandler:
    """aiosmtpd handler that records what it accepts. `rcpt_reply` may return an SMTP reply (e.g. "451 try later")
    to refuse a recipient; `data_reply` likewise for the whole message."""

    messages: list[ReceivedMessage] = field(default_factory=list)
    rcpt_reply: Callable[[str], str | None] = lambda address: None
    data_reply: Callable[[], str | None] = lambda: None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rcpt_reply(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = self.data_reply()
        if reply:
            return reply
        with self.lock:
            self.messages.append(
                ReceivedMessage(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return "250 Message accepted"

    def to(self, address: str) -> list[ReceivedMessage]:
        return [m for m in self.messages if address in m.rcpt_tos]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_servers(settings) -> Iterator[Callable[..., RecordingHandler]]:
    """Factory: start a real SMTP server on loopback (aiosmtpd Controller options, e.g. TLS, as keywords) with a
    RecordingHandler (or `handler`); Django's EMAIL_* settings point at the last one started. All stop at the end."""
    controllers = []

    def start(handler: object | None = None, **options) -> RecordingHandler:
        handler = handler or RecordingHandler()
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
        controller.start()
        controllers.append(controller)
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        handler.port, handler.controller = port, controller
        return handler

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def quiet_smtp_log() -> Iterator[None]:
    """aiosmtpd logs every command at INFO; captured by pytest, that logging is most of a big send test's time."""
    logger = logging.getLogger("mail.log")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


@pytest.fixture
def smtp_server(smtp_servers) -> RecordingHandler:
    """A real SMTP server on loopback; Django's EMAIL_* settings point at it for the test."""
    return smtp_servers()


# --- Celery worker process -------------------------------------------------------------------------------------


def database_url() -> str:
    """The URL of the database the test run is using (the test database), for a child process."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": database_url()}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _purge_queues() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in ("default", "bulk", "priority"):
            with contextlib.suppress(Exception):  # a queue never declared has nothing to purge
                channel.queue_purge(queue)


class WorkerProcess:
    """A real `celery worker` child process on the configured broker and the test database."""

    def __init__(self, queues: str = "default,bulk,priority", concurrency: int = 1, env: dict | None = None):
        self.log = tempfile.NamedTemporaryFile(prefix="celery-worker-", suffix=".log", delete=False)  # noqa: SIM115
        cmd = [
            sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO", "--without-gossip",
            "--without-mingle", "--without-heartbeat", f"--concurrency={concurrency}", "-Q", queues,
            "-n", f"test-{os.getpid()}-{id(self)}@%h",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=child_env(**(env or {})), stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self._wait_ready()

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.output():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.output()}")
            time.sleep(0.1)
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.output()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the whole process group (the main process and its pool children)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        Path(self.log.name).unlink(missing_ok=True)


@pytest.fixture
def celery_worker(transactional_db) -> Iterator[Callable[..., WorkerProcess]]:
    """Factory: start real worker processes; all are stopped at the end of the test."""
    _purge_queues()
    workers: list[WorkerProcess] = []

    def start(**kwargs) -> WorkerProcess:
        worker = WorkerProcess(**kwargs)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def _wait_for(predicate: Callable[[], object], timeout: float = 30, interval: float = 0.1, what: str = "condition"):
    """Poll until predicate() is truthy; return its value or fail with `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


# --- Browser ---------------------------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium driven by Playwright (never a downloaded browser). Module-scoped, so that the
    async-unsafe switch below is gone before other modules start child processes (`manage.py check --deploy`
    fails async.E001 when it inherits it)."""
    _require(Path(CHROMIUM).exists(), "Chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the Django ORM calls our tests make between
    # page actions are still synchronous.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(autouse=True)
def _site_url(settings, request):
    """Links in emails point at the live server when a test uses one."""
    if "live_server" in request.fixturenames:
        settings.SITE_URL = request.getfixturevalue("live_server").url


SCREENSHOTS = ROOT / "var" / "screenshots"


@pytest.fixture
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


# --- helpers as fixtures (test modules import only tests.factories) ------------------------------------------


@pytest.fixture
def require() -> Callable[[bool, str], None]:
    """require(condition, what): skip (in CI, fail) when a service the test needs is missing."""
    return _require


@pytest.fixture
def wait_for() -> Callable[..., object]:
    """wait_for(predicate, timeout=30, what=...): poll until truthy, or fail naming what was awaited."""
    return _wait_for


@pytest.fixture
def recover_until() -> Callable[..., object]:
    """recover_until(predicate, what=..., timeout=90): what beat does every few seconds (a recovery pass), done
    here every quarter second until predicate() is truthy; returns its value or fails naming what was awaited."""

    from newsletter import delivery

    def poll(predicate: Callable[[], object], what: str = "the send to finish", timeout: float = 90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if value := predicate():
                return value
            delivery.issues_recover()
            time.sleep(0.25)
        pytest.fail(f"timed out after {timeout}s waiting for {what}")

    return poll


@pytest.fixture
def project_root() -> Path:
    return ROOT


@pytest.fixture
def parse() -> Callable[[bytes], EmailMessage]:
    """The bytes of a message as an EmailMessage (the modern policy)."""
    return lambda data: message_from_bytes(data, policy=policy.default)


@pytest.fixture
def counts() -> Callable[[object], dict[str, int]]:
    """counts(issue): the issue's deliveries by state, every state present."""
    from newsletter.models import Delivery

    def count(issue) -> dict[str, int]:
        return {
            status: Delivery.objects.filter(issue=issue, status=status).count() for status in Delivery.Status.values
        }

    return count


@pytest.fixture
def received_by_address() -> Callable[[RecordingHandler], dict[str, int]]:
    """received_by_address(smtp_server): how many messages the server accepted per recipient address."""

    def received(server: RecordingHandler) -> dict[str, int]:
        seen: dict[str, int] = {}
        with server.lock:
            messages = list(server.messages)
        for message in messages:
            for address in message.rcpt_tos:
                seen[address] = seen.get(address, 0) + 1
        return seen

    return received


@pytest.fixture
def start() -> Callable[[object], None]:
    """start(issue): start the send and materialise in-process (in-process tests consume no task queue)."""
    from newsletter import delivery

    def start_send(issue) -> None:
        assert delivery.send_start(issue.pk)
        assert delivery.deliveries_materialise(issue.pk) is None
        issue.refresh_from_db()

    return start_send


@pytest.fixture
def drain() -> Callable[..., None]:
    """drain(issue): run batches in this process until none is left, then finish the issue as recovery would."""
    from newsletter import delivery

    def run(issue, batches: int = 100) -> None:
        for _ in range(batches):
            if not delivery.deliveries_send_batch(issue.pk).more:
                break
        delivery.send_finish(issue.pk)
        issue.refresh_from_db()

    return run


@pytest.fixture
def purge_queues() -> Callable[[], None]:
    """purge_queues(): empty the broker's queues (a lost-messages test)."""
    return _purge_queues


# An ESP simulated by anymail's own test backend (the whole anymail send path: payload, recipient status parsing,
# anymail_status on the message), answering "rejected"/"invalid" for these addresses as a real ESP would for a
# suppressed or malformed recipient, and "queued" with its own message id for everyone else. Importable by worker
# processes (EMAIL_BACKEND=tests.conftest.EspBackend).
ESP_REFUSES = {"reader3@example.com": "rejected", "reader5@example.com": "invalid"}


class EspBackend(anymail_test.EmailBackend):
    def post_to_esp(self, payload, message):
        response = super().post_to_esp(payload, message)
        for email in payload.recipient_emails:
            status = ESP_REFUSES.get(email, "queued")
            message_id = None if email in ESP_REFUSES else f"esp-{email}"
            response["recipient_status"][email] = AnymailRecipientStatus(message_id, status)
        return response


class EspUnauthorizedBackend(anymail_test.EmailBackend):
    """The same ESP with a revoked API key: every send call answers HTTP 401, as anymail reports it."""

    def post_to_esp(self, payload, message):
        response = requests.Response()
        response.status_code, response.reason = 401, "Unauthorized"
        response._content = b'{"ErrorCode": 10, "Message": "The server token you provided was not valid."}'
        raise AnymailRequestsAPIError(
            "The ESP refused the API key", email_message=message, payload=payload, response=response, backend=self
        )


@dataclass(frozen=True)
class Esp:
    backend: str  # for EMAIL_BACKEND, in this process or a worker's environment
    refuses: dict[str, str]  # address → the status the ESP answers for it
    unauthorized: str  # the backend of the same ESP refusing the API key


@pytest.fixture
def esp() -> Esp:
    return Esp(f"{__name__}.EspBackend", ESP_REFUSES, f"{__name__}.EspUnauthorizedBackend")


__all__ = ["IN_CI", "settings"]


@pytest.fixture
def media_root(settings, tmp_path) -> Path:
    """Uploaded images of this test go to a folder of its own."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def signup_inline(request, monkeypatch):
    """The public form queues each signup as a task (subscribers.signup: no timing oracle). Most tests check what
    a signup does, so here the view's task runs at once, in the request; a test marked `signup_queued` sees the
    queue as the view leaves it."""
    if request.node.get_closest_marker("signup_queued"):
        return
    from subscribers import dispatch
    from subscribers.tasks import signup_task

    monkeypatch.setattr(dispatch, "signup_later", signup_task)


TRACKED_LINK = re.compile(r"https?://[^\s\"<>]+/r/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


@pytest.fixture
def engagement_state() -> Iterator[None]:
    """Engagement's per-process caches (keyed by issue id, which a new test database reuses) and the shared hit
    queue start empty."""
    links.link_target.cache_clear()
    links.issue_tracking.cache_clear()
    client = hits.redis_client()
    if client is not None:
        client.delete(hits.QUEUE_KEY, hits.LOCK_KEY)
    yield
    links.link_target.cache_clear()
    links.issue_tracking.cache_clear()


@pytest.fixture
def tracked_links() -> Callable[[EmailMessage], tuple[list[str], list[str]]]:
    """tracked_links(message): the tracked URLs of an EmailMessage's HTML part, in order, and of its text part."""

    def find(message: EmailMessage) -> tuple[list[str], list[str]]:
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        return TRACKED_LINK.findall(html), TRACKED_LINK.findall(text)

    return find
