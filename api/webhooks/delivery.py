"""Delivering the outbox: at least once, the same `webhook-id` on every attempt, exponential backoff with jitter
for about three days, through the SSRF guard the article importer uses.

One task per (event, endpoint) row. A delivery is claimed with a conditional UPDATE (pending and due, or
delivering with an expired lease) and a fresh claim token, committed before the HTTP request; the outcome is
written only while that token still owns the row. A worker killed mid-request leaves the row `delivering`; once
its lease expires beat's dispatcher hands it to another worker, which sends the same event again with the same
id (receivers deduplicate on `webhook-id`).
"""

import logging
import random
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from api import dispatch
from api.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, webhook_secret_new
from api.webhooks.signing import endpoint_secrets, signature_headers
from newsletter.conf import app_settings
from newsletter.services.importing import UnsafeAddressError, guarded_opener, url_refusal

log = logging.getLogger(__name__)

USER_AGENT = "Masthead-Webhooks/1"
EXCERPT = 500
Status = WebhookDelivery.Status


def _private_allowed() -> bool:
    return bool(app_settings.WEBHOOK_ALLOW_PRIVATE_URLS)


def backoff_seconds(attempts: int) -> float:
    """Wait before attempt `attempts + 1`: base * 2^(attempts-1), at most the maximum, ±25 % jitter so that many
    failing deliveries do not retry in lockstep."""
    base = float(app_settings.WEBHOOK_RETRY_BASE_SECONDS)
    delay = min(base * 2 ** max(0, attempts - 1), float(app_settings.WEBHOOK_RETRY_MAX_SECONDS))
    return delay * random.uniform(0.75, 1.25)


@dataclass(frozen=True)
class Answer:
    status_code: int | None  # None: no HTTP answer (refused, timeout, connection error)
    error: str = ""
    excerpt: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """POST through the SSRF guard, no redirects followed (a 3xx is a failure: the endpoint must be configured
    with its final URL)."""
    refusal = url_refusal(url, allow_private=_private_allowed())
    if refusal:
        return Answer(None, f"refused: {refusal}")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    opener = guarded_opener(allow_private=_private_allowed(), follow_redirects=False)
    try:
        with opener.open(request, timeout=timeout) as response:
            return Answer(response.status, excerpt=response.read(EXCERPT).decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        try:
            excerpt = exc.read(EXCERPT).decode("utf-8", "replace")
        except OSError:
            excerpt = ""
        return Answer(exc.code, f"HTTP {exc.code}", excerpt)
    except urllib.error.URLError as exc:
        reason = exc.reason
        prefix = "refused: " if isinstance(reason, UnsafeAddressError) else ""
        return Answer(None, f"{prefix}{reason}"[:EXCERPT])
    except (OSError, ValueError) as exc:  # timeouts, resets, malformed answers
        return Answer(None, f"{exc.__class__.__name__}: {exc}"[:EXCERPT])


def _claim(delivery_id: int) -> uuid.UUID | None:
    """Take the delivery for one attempt, or None when it is not due, in flight elsewhere or finished. One
    conditional UPDATE: of two workers, exactly one wins. Only this row's own columns are in the WHERE (no join),
    so PostgreSQL re-checks them on the row a concurrent claim just committed and the second claim updates
    nothing."""
    now = timezone.now()
    token = uuid.uuid4()
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id)
        .filter(Q(status=Status.PENDING, next_attempt_at__lte=now) | Q(status=Status.DELIVERING, lease_until__lte=now))
        .update(
            status=Status.DELIVERING,
            claim_token=token,
            queued_at=None,
            lease_until=now + timedelta(seconds=float(app_settings.WEBHOOK_LEASE_SECONDS)),
            attempts=F("attempts") + 1,
            updated_at=now,
        )
    )
    return token if claimed else None


def webhook_deliver(delivery_id: int) -> str:
    """One attempt of one delivery, if it is due and its endpoint enabled. Safe to run any number of times,
    concurrently too: only the claim's owner sends. Returns what happened (for the task's log)."""
    token = _claim(delivery_id)
    if token is None:
        return "not due"
    delivery = WebhookDelivery.objects.select_related("event", "endpoint").get(pk=delivery_id)
    endpoint, event = delivery.endpoint, delivery.event
    if not endpoint.is_active:  # disabled since the row was queued: give the claim back, untried
        WebhookDelivery.objects.filter(pk=delivery_id, claim_token=token).update(
            status=Status.PENDING, attempts=F("attempts") - 1, lease_until=None, claim_token=None
        )
        return "endpoint disabled"
    started = timezone.now()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **signature_headers(event.msg_id, event.body, endpoint_secrets(endpoint, started), started),
    }
    clock = time.monotonic()
    timeout = min(float(app_settings.WEBHOOK_TIMEOUT_SECONDS), float(app_settings.WEBHOOK_LEASE_SECONDS) * 0.8)
    answer = _post(endpoint.url, event.body.encode(), headers, timeout)
    duration_ms = int((time.monotonic() - clock) * 1000)
    return _record(delivery, token, answer, started, duration_ms)


def _record(delivery: WebhookDelivery, token: uuid.UUID, answer: Answer, started, duration_ms: int) -> str:
    now = timezone.now()
    endpoint = delivery.endpoint
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            started_at=started,
            duration_ms=duration_ms,
            status_code=answer.status_code,
            error=answer.error[:EXCERPT],
            response_excerpt=answer.excerpt[:EXCERPT],
        )
        owned = WebhookDelivery.objects.filter(pk=delivery.pk, claim_token=token)
        common = {"last_status_code": answer.status_code, "last_error": answer.error[:EXCERPT], "updated_at": now}
        if answer.ok:
            owned.update(status=Status.DELIVERED, delivered_at=now, lease_until=None, claim_token=None, **common)
            if endpoint.failing_since is not None:
                WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
            return f"delivered ({answer.status_code})"
        if answer.status_code == 410:
            owned.update(status=Status.FAILED, lease_until=None, claim_token=None, **common)
            endpoint_disable(endpoint, "The endpoint answered 410 Gone: it asked not to receive events any more.")
            return "410: endpoint disabled"
        next_at = now + timedelta(seconds=backoff_seconds(delivery.attempts))
        give_up_at = delivery.event.created_at + timedelta(hours=float(app_settings.WEBHOOK_RETRY_HOURS))
        if next_at > give_up_at:
            owned.update(status=Status.FAILED, lease_until=None, claim_token=None, **common)
            outcome = f"gave up after {delivery.attempts} attempts"
        else:
            owned.update(status=Status.PENDING, next_attempt_at=next_at, lease_until=None, claim_token=None, **common)
            outcome = f"failed ({answer.error or answer.status_code}); next attempt at {next_at:%Y-%m-%d %H:%M:%S}"
        _endpoint_failing(endpoint, now)
    return outcome


def _endpoint_failing(endpoint: WebhookEndpoint, now) -> None:
    WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
    endpoint.refresh_from_db(fields=["failing_since", "is_active"])
    limit = timedelta(hours=float(app_settings.WEBHOOK_DISABLE_AFTER_HOURS))
    if endpoint.is_active and endpoint.failing_since and now - endpoint.failing_since >= limit:
        endpoint_disable(endpoint, f"Every attempt failed since {endpoint.failing_since:%Y-%m-%d %H:%M %Z}.")


def endpoint_disable(endpoint: WebhookEndpoint, reason: str) -> bool:
    """Stop sending to the endpoint (its pending deliveries wait; re-enabling resumes them). Returns whether this
    call disabled it. The admin shows a notice for every disabled endpoint."""
    changed = WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
        is_active=False, disabled_at=timezone.now(), disabled_reason=reason[:300]
    )
    if changed:
        log.warning("webhook endpoint %s disabled: %s", endpoint.url, reason)
    return bool(changed)


def endpoint_enable(endpoint: WebhookEndpoint) -> None:
    """Send to the endpoint again; deliveries still within their retry window go out at once."""
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            is_active=True, disabled_at=None, disabled_reason="", failing_since=None
        )
        WebhookDelivery.objects.filter(endpoint=endpoint, status=Status.PENDING).update(next_attempt_at=timezone.now())
        transaction.on_commit(webhooks_dispatch)


def endpoint_rotate_secret(endpoint: WebhookEndpoint, overlap_hours: float = 24) -> str:
    """A new secret; the old one keeps signing too (a second signature) for `overlap_hours`, so receivers can
    switch without losing a request. Returns the new secret."""
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = timezone.now() + timedelta(hours=overlap_hours)
    endpoint.secret = webhook_secret_new()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_until"])
    return endpoint.secret


def delivery_replay(delivery: WebhookDelivery) -> bool:
    """Send the event again (same webhook-id and body), e.g. after the receiver fixed a bug. Refused (False) while
    the endpoint is disabled or the delivery is in flight."""
    if not WebhookEndpoint.objects.filter(pk=delivery.endpoint_id, is_active=True).exists():
        return False
    with transaction.atomic():
        changed = (
            WebhookDelivery.objects.filter(pk=delivery.pk)
            .exclude(status=Status.DELIVERING, lease_until__gt=timezone.now())
            .update(
                status=Status.PENDING,
                next_attempt_at=timezone.now(),
                queued_at=timezone.now(),
                updated_at=timezone.now(),
            )
        )
        if changed:
            dispatch.webhook_deliver_later([delivery.pk])
    return bool(changed)


def webhooks_dispatch(limit: int = 1000) -> int:
    """Queue a task for every due delivery: retries whose time has come, first attempts whose queue message was
    lost (a Redis flush), and claims whose lease expired (the worker died). A row already queued within the last
    lease is left alone, so a backlog is not queued twice over. Beat runs this every WEBHOOK_POLL_INTERVAL
    seconds; safe to run any number of times (a task finds nothing to claim twice)."""
    now = timezone.now()
    requeue_before = now - timedelta(seconds=float(app_settings.WEBHOOK_LEASE_SECONDS))
    due = list(
        WebhookDelivery.objects.filter(endpoint__is_active=True)
        .filter(Q(status=Status.PENDING, next_attempt_at__lte=now) | Q(status=Status.DELIVERING, lease_until__lte=now))
        .filter(Q(queued_at__isnull=True) | Q(queued_at__lte=requeue_before))
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    if due:
        WebhookDelivery.objects.filter(pk__in=due).update(queued_at=now)
    dispatch.webhook_deliver_later(due)
    return len(due)
