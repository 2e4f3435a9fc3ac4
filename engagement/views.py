"""The reader-facing doors: a tracked link's redirect and the open pixel. Thin: verify the token, queue the hit
(services/hits.py; no database write), answer. An unknown or forged token gets a friendly page, never a
redirect: only URLs that were in the token's issue are ever targets."""

from __future__ import annotations

import time

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from engagement import tokens
from engagement.services.classify import QueuedHit, request_flags
from engagement.services.hits import hit_queue
from engagement.services.links import issue_tracking, link_target

# The smallest transparent GIF (43 bytes).
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def unknown_link(request: HttpRequest) -> HttpResponse:
    return render(request, "engagement/unknown_link.html", status=404)


def _queue(request: HttpRequest, hit: tokens.Hit) -> None:
    meta = request.META
    flags = request_flags(request.method, meta, meta.get("REMOTE_ADDR", ""), meta.get("HTTP_USER_AGENT", ""))
    hit_queue(QueuedHit(hit.issue_id, hit.number, hit.variant, hit.sent, hit.delivery_id, time.time(), flags))


@require_safe
@never_cache
def click(request: HttpRequest, token: str) -> HttpResponse:
    hit = tokens.hit_parse(token)
    target = link_target(hit.issue_id, hit.number) if hit and hit.number else None
    if target is None:
        return unknown_link(request)
    _queue(request, hit)
    return HttpResponseRedirect(target)


@require_safe
@never_cache
def pixel(request: HttpRequest, token: str) -> HttpResponse:
    hit = tokens.hit_parse(token)
    if hit is not None and hit.number == 0 and issue_tracking(hit.issue_id)[1]:
        _queue(request, hit)
    return HttpResponse(PIXEL, content_type="image/gif")
