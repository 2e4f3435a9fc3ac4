"""The tracked-link redirect in front of Django: a WSGI wrapper that answers `GET /r/<token>` itself.

A click is the hottest request Masthead serves (a big issue's readers click within the same few minutes, and
scanners click everything). Through Django it would pay for the whole middleware stack (sessions, locale, CSRF,
messages) on a request that needs none of it. Here it costs a token check (two HMACs), an in-process lookup of
the issue's link and one RPUSH to Redis. Anything else, and every case that needs a page (an unknown or forged
token, a HEAD, a POST), goes on to Django unchanged, so the friendly 404 and all of Django's answers stay in one
place (engagement/views.py, which does the same for the requests it receives).

The client address is worked out as TrustedProxyMiddleware does it (config/proxies.py), for the classifier only.
"""

from __future__ import annotations

import time

from django.db import close_old_connections
from django.utils.encoding import iri_to_uri

from config.proxies import client_address, trusted_proxies
from engagement import tokens
from engagement.services.classify import QueuedHit, request_flags
from engagement.services.hits import hit_queue
from engagement.services.links import link_target
from newsletter.conf import app_settings

_HEADERS = [
    ("Cache-Control", "max-age=0, no-cache, no-store, must-revalidate, private"),
    ("Referrer-Policy", "same-origin"),
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Length", "0"),
]


def _target(hit: tokens.Hit) -> str | None:
    misses = link_target.cache_info().misses
    url = link_target(hit.issue_id, hit.number)
    if link_target.cache_info().misses != misses:
        close_old_connections()  # the database was read: what Django does when a request ends
    return url


class TrackingFastPath:
    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/r/") or environ.get("REQUEST_METHOD") != "GET":
            return self.app(environ, start_response)
        hit = tokens.hit_parse(path[3:])
        url = _target(hit) if hit is not None and hit.number else None
        if url is None:
            return self.app(environ, start_response)  # Django's friendly page
        peer = environ.get("REMOTE_ADDR", "")
        ip = client_address(
            peer, environ.get("HTTP_X_FORWARDED_FOR", ""), trusted_proxies(app_settings.TRUSTED_PROXIES)
        )
        flags = request_flags("GET", environ, ip, environ.get("HTTP_USER_AGENT", ""))
        hit_queue(QueuedHit(hit.issue_id, hit.number, hit.variant, hit.sent, hit.delivery_id, time.time(), flags))
        start_response("302 Found", [("Location", iri_to_uri(url)), *_HEADERS])
        return [b""]
