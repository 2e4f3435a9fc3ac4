"""API tokens, idempotency records, the CMS's article identities, and the outgoing webhook outbox.

The outbox: every event is one WebhookEvent row (its `msg_id` is the `webhook-id` every attempt carries), written
in the same transaction as the change it reports, with one WebhookDelivery row per endpoint that listens to it.
A delivery is claimed by a conditional UPDATE with a lease, so a worker killed mid-request leaves a row that is
tried again once the lease expires; every HTTP attempt is kept as a WebhookAttempt (the delivery log).
"""

import base64
import hashlib
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

TOKEN_PREFIX = "mh_"


def token_digest(token: str) -> str:
    """Tokens are 256 random bits, so a plain SHA-256 is enough to store them (no slow hash needed: nothing to
    brute-force), and a lookup by digest stays one index probe per request."""
    return hashlib.sha256(token.encode()).hexdigest()


def webhook_secret_new() -> str:
    """A Standard Webhooks secret: `whsec_` and base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class ApiToken(models.Model):
    """A bearer token acting as its user, limited to that user's permissions. Only the digest is stored; the
    token itself is shown once, when it is created."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text=_("What uses it, e.g. “CMS publishing hook”."))
    prefix = models.CharField(max_length=16, editable=False, help_text=_("The token's first characters."))
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API token")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class IdempotencyKey(models.Model):
    """A create request made with an `Idempotency-Key` header, and the response it got: a retry with the same key
    and body replays the response instead of creating again. Written in the create's own transaction."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text=_("SHA-256 of method, path and body."))
    status_code = models.PositiveSmallIntegerField(null=True)
    response = models.TextField(blank=True, help_text=_("The first answer's body, replayed byte for byte."))
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_once_per_user")]

    def __str__(self) -> str:
        return self.key


class ExternalArticle(models.Model):
    """The CMS's own identifier of an article, so the CMS can create and update it by that id."""

    external_id = models.CharField(max_length=200, unique=True)
    article = models.OneToOneField("newsletter.Article", on_delete=models.CASCADE, related_name="external")

    def __str__(self) -> str:
        return self.external_id


# The event types an endpoint may subscribe to.
EVENT_TYPES = [
    ("subscriber.created", _("Subscriber created")),
    ("subscriber.confirmed", _("Subscriber confirmed")),
    ("subscriber.unsubscribed", _("Subscriber unsubscribed")),
    ("subscriber.erased", _("Subscriber erased")),
    ("issue.started", _("Issue started sending")),
    ("issue.sent", _("Issue sent")),
    ("issue.paused", _("Issue paused")),
    ("delivery.bounced", _("Delivery bounced")),
    ("delivery.complained", _("Spam complaint")),
]
EVENT_TYPE_NAMES = [name for name, _label in EVENT_TYPES]


class WebhookEndpoint(models.Model):
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(
        default=list, blank=True, help_text=_("Event types sent to this URL; none ticked means every type.")
    )
    secret = models.CharField(max_length=100, default=webhook_secret_new, help_text=_("Signs every request."))
    # During a rotation both secrets sign (several signatures in `webhook-signature`), until this time.
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_until = models.DateTimeField(null=True, blank=True, editable=False)
    is_active = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.CharField(max_length=300, blank=True, editable=False)
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["url"]
        verbose_name = _("webhook endpoint")

    def __str__(self) -> str:
        return self.url

    def listens_to(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookEvent(models.Model):
    """One event in the outbox. `body` is the exact JSON sent (and signed) on every attempt."""

    msg_id = models.CharField(max_length=40, unique=True, editable=False)
    type = models.CharField(max_length=40, db_index=True)
    body = models.TextField()
    # Set on subscriber events, so erasure can blank the address in earlier events of the same person.
    subscriber_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("webhook event")

    def __str__(self) -> str:
        return f"{self.type} {self.msg_id}"

    @staticmethod
    def new_msg_id() -> str:
        return "msg_" + uuid.uuid4().hex


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERING = "delivering", _("Delivering")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed (gave up)")

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When a task for it was last put on the queue (cleared when a worker claims it): the dispatcher does not queue
    # it again within a lease, so a backlog is never multiplied.
    queued_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once")]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due")]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint}"


class WebhookAttempt(models.Model):
    """One HTTP request of a delivery: the delivery log."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error}"
