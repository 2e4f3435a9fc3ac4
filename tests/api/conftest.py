"""Fixtures for the API tests: tokens for users with given permissions, and a real HTTP webhook receiver."""

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.cache import cache
from django.test import Client

from api.services.tokens import api_token_create
from tests.factories import NewsletterFactory, user_with_perms

EVERYTHING = (
    "view_newsletter", "view_article", "add_article", "change_article", "view_issue", "add_issue", "change_issue",
    "send_issue", "view_subscriber", "add_subscriber", "suppress_subscriber", "export_subscriber",
    "erase_subscriber", "view_suppression", "change_subscriber", "view_segment",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


class ApiClient(Client):
    """Django's test client with a bearer token on every request and JSON bodies."""

    def __init__(self, token: str | None, user=None):
        super().__init__(HTTP_AUTHORIZATION=f"Bearer {token}" if token else "")
        self.token, self.user = token, user

    def call(self, method: str, path: str, body=None, **headers):
        kwargs = {"content_type": "application/json"}
        if body is not None:
            kwargs["data"] = body if isinstance(body, (str, bytes)) else json.dumps(body)
        return getattr(self, method.lower())(f"/api/v1{path}", headers=headers, **kwargs)


@pytest.fixture
def token_for(db) -> Callable[..., ApiClient]:
    """token_for("editor", "view_issue", ...) → a client authenticated as a new user with those permissions."""

    def make(username: str, *codenames: str) -> ApiClient:
        user = user_with_perms(username, *codenames)
        _token, raw = api_token_create(user, f"{username}'s token")
        return ApiClient(raw, user)

    return make


@pytest.fixture
def admin_api(token_for) -> ApiClient:
    return token_for("robot", *EVERYTHING)


@pytest.fixture
def newsletter(db):
    return NewsletterFactory(name="Daily Brief", slug="daily-brief")


def assert_problem(response, status: int, *, field: str | None = None) -> dict:
    """The response is an RFC 9457 problem with this status (and, if given, an error about `field`)."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status and problem["title"] and problem["detail"] and problem["type"]
    if field is not None:
        assert field in [e["field"] for e in problem["errors"]], problem
    return problem


# --- a real HTTP receiver ----------------------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An http.server on 127.0.0.1 that records every POST. `statuses` are answered in turn (then 200);
    `hold`, when set, makes the handler wait until it is released (a slow receiver) and sets `holding`."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    hold: threading.Event | None = None
    holding: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/masthead"

    def ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.requests]


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    settings.MASTHEAD = {**settings.MASTHEAD, "WEBHOOK_ALLOW_PRIVATE_URLS": True}
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with state.lock:
                state.requests.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                status = state.statuses.pop(0) if state.statuses else 200
            hold = state.hold
            if hold is not None:
                state.holding.set()
                hold.wait(60)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    if state.hold is not None:
        state.hold.set()
    server.shutdown()
    server.server_close()
