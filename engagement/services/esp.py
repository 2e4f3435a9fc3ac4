"""Opens and clicks an ESP reports through anymail's tracking webhooks, for installs that let the ESP track.

anymail normalises the event type, Message-ID, URL and user agent, but not the bot flags: those stay in the raw
`esp_event`, read here for the ESPs that send one (SendGrid's `sg_machine_open`, Mailgun's `client-info.bot`,
and a plain `bot`/`is_bot` flag). A click on one of our own redirects is skipped: the redirect counted it. The
ESP's user agent goes through the same classifier as ours; neither it nor any IP is kept.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from django.conf import settings

from engagement.models import OPEN, Link
from engagement.services.classify import APPLE_PROXY, ESP_BOT, GOOGLE_PROXY, QueuedHit, request_flags
from engagement.services.hits import hit_queue
from engagement.services.links import issue_tracking
from newsletter import delivery
from newsletter.models import TrackingMode


def esp_bot_flags(raw: object) -> int:
    """The classifier flags an ESP's raw event carries (0 when it says nothing)."""
    if not isinstance(raw, Mapping):
        return 0
    if raw.get("sg_machine_open"):
        return APPLE_PROXY
    info = raw.get("client-info") or raw.get("client_info") or {}
    bot = str(info.get("bot", "") if isinstance(info, Mapping) else "").lower()
    if bot == "apple":
        return APPLE_PROXY
    if bot in ("gmail", "google"):
        return GOOGLE_PROXY
    if bot or raw.get("bot") or raw.get("is_bot") or raw.get("isBot"):
        return ESP_BOT
    return 0


def esp_event_count(event, esp_name: str) -> bool:
    """Queue an ESP's "opened" or "clicked" event like a hit on our own door. Returns whether it was queued."""
    if event.event_type not in ("opened", "clicked") or not event.message_id:
        return False
    if event.event_type == "clicked" and (event.click_url or "").startswith(f"{settings.SITE_URL}/r/"):
        return False
    found = delivery.delivery_for_message_id(event.message_id)
    if found is None:
        return False
    mode, pixel = issue_tracking(found.issue_id)
    if mode not in (TrackingMode.AGGREGATE, TrackingMode.PER_READER):
        return False
    if event.event_type == "opened":
        if pixel:
            return False  # our own pixel counts opens; the ESP's would count them twice
        number = OPEN
    else:
        number = (
            Link.objects.filter(issue_id=found.issue_id, url=event.click_url).values_list("number", flat=True).first()
        )
        if number is None:
            return False
    flags = request_flags("GET", {}, "", event.user_agent or "Mozilla/5.0 (unknown)") | esp_bot_flags(event.esp_event)
    sent = int(found.sent_at.timestamp()) if found.sent_at else 0
    at = event.timestamp.timestamp() if event.timestamp else time.time()
    per_reader = found.pk if mode == TrackingMode.PER_READER else 0  # the flush keeps it only if they agreed
    hit_queue(QueuedHit(found.issue_id, number, found.variant, sent, per_reader, at, flags))
    return True
