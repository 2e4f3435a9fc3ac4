"""Readers, what they subscribed to, the append-only consent ledger, and the suppression list."""

import functools
import hashlib
import hmac
import uuid
import zoneinfo

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from newsletter.conf import app_settings


def suppression_keys() -> list[str]:
    """The keys of the suppression list's hashes: the current one first, then every key that may still have
    made an entry. SUPPRESSION_HASH_KEY is its own secret (falling back to SECRET_KEY when unset), so rotating
    SECRET_KEY need not touch the list; SUPPRESSION_HASH_KEY_FALLBACKS are its old values, and SECRET_KEY with
    SECRET_KEY_FALLBACKS are always tried too, because entries made before SUPPRESSION_HASH_KEY was set were keyed
    with them. `manage.py suppression_rehash` moves entries onto the current key."""
    keys = [
        app_settings.SUPPRESSION_HASH_KEY,
        *app_settings.SUPPRESSION_HASH_KEY_FALLBACKS,
        settings.SECRET_KEY,
        *settings.SECRET_KEY_FALLBACKS,
    ]
    return list(dict.fromkeys(k for k in keys if k))


def email_hash(email: str, key: str | None = None) -> str:
    """Keyed hash of an address (with `key`, by default the current suppression key): lets the suppression list
    block an address without storing it, and a guess can't be checked without the key. Callers pass the
    canonical address (services.addresses.address_normalise); the hash lowercases it."""
    secret = (key or suppression_keys()[0]).encode()
    return hmac.new(secret, email.strip().lower().encode(), hashlib.sha256).hexdigest()


def suppression_key_id(key: str) -> str:
    """A short fingerprint naming a key without revealing it: which key made an entry."""
    return hmac.new(key.encode(), b"masthead suppression key id", hashlib.sha256).hexdigest()[:12]


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def time_zone_clean(value: str) -> str:
    """The IANA time zone name if `value` is one (e.g. "Europe/Madrid"), else "" (unknown, or not sent)."""
    value = (value or "").strip()
    return value if value in _time_zones() else ""


class Subscriber(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Awaiting confirmation")
        ACTIVE = "active", _("Active")
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
        SUPPRESSED = "suppressed", _("Suppressed (bounce or complaint)")

    email = models.EmailField(max_length=254)
    name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    # The only identity put into signed links: random, so a link never reveals or enumerates anything.
    token = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    source = models.CharField(max_length=32, blank=True)
    # The language of the page they signed up on (a code from settings.LANGUAGES): their emails are written in it.
    # Blank (imported people): settings.LANGUAGE_CODE.
    language = models.CharField(max_length=16, blank=True)
    # An IANA time zone (from the signup page's browser, or an import column) for sends in the reader's local time;
    # blank: the site's TIME_ZONE. db_default: the import's and other raw INSERTs name only the columns they fill.
    time_zone = models.CharField(max_length=64, blank=True, default="", db_default="")
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmation_sent_at = models.DateTimeField(null=True, blank=True)
    soft_bounces = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(Lower("email"), name="subscriber_unique_email_ci")]
        permissions = [
            ("export_subscriber", "Can export subscriber data"),
            ("erase_subscriber", "Can erase subscribers"),
            ("suppress_subscriber", "Can suppress and unsubscribe subscribers"),
            ("import_subscribers", "Can import subscribers from CSV"),
        ]

    def __str__(self) -> str:
        return self.email


class Subscription(models.Model):
    """A subscriber's membership of one newsletter. Only active rows of active subscribers receive issues.

    Consent is per newsletter: a signup creates a *pending* row, and only its owner confirming that newsletter
    (the confirmation link names it), choosing it on their preferences page, or an operator's import attesting
    consent makes it active. Confirming one newsletter never activates another."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Awaiting confirmation")
        ACTIVE = "active", _("Subscribed")
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="subscriptions")
    newsletter = models.ForeignKey("newsletter.Newsletter", on_delete=models.CASCADE, related_name="subscriptions")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subscriber", "newsletter"], name="subscription_once")]
        indexes = [
            models.Index(fields=["newsletter", "status"], name="subscription_nl_status"),
            # Materialising walks a newsletter's active readers by subscriber id (keyset); this index is that walk.
            models.Index(
                fields=["newsletter", "subscriber"], condition=Q(status="active"), name="subscription_nl_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscriber} → {self.newsletter}"


class ConsentEvent(models.Model):
    """Append-only ledger of every change to a person's consent. Rows are never updated or deleted, except that
    erasure blanks the personal fields (address, IP, user agent) of that person's rows."""

    class Kind(models.TextChoices):
        SUBSCRIBE = "subscribe", _("Subscribed")
        CONFIRM = "confirm", _("Confirmed")
        UNSUBSCRIBE = "unsubscribe", _("Unsubscribed")
        PREFERENCES = "preferences", _("Changed preferences")
        IMPORT = "import", _("Imported")
        SUPPRESS = "suppress", _("Suppressed")
        ERASE = "erase", _("Erased")

    class Source(models.TextChoices):
        FORM = "form", _("Signup form")
        EMBED = "embed", _("Embedded form")
        IMPORT = "import", _("Import")
        ADMIN = "admin", _("Admin")
        LINK = "link", _("Email link")
        ONE_CLICK = "one_click", _("One-click unsubscribe")
        WEBHOOK = "webhook", _("ESP webhook")
        BOUNCE = "bounce", _("Bounce reply to our SMTP client")
        API = "api", _("REST API")
        INBOUND = "inbound", _("Bounce or complaint mailed back")
        MAILTO = "mailto", _("Unsubscribe by email")

    subscriber = models.ForeignKey(
        Subscriber, null=True, blank=True, on_delete=models.SET_NULL, related_name="consent_events"
    )
    newsletter = models.ForeignKey("newsletter.Newsletter", null=True, blank=True, on_delete=models.SET_NULL)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    policy_version = models.CharField(max_length=32, blank=True)
    consent_text = models.TextField(blank=True)
    ip_address = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    detail = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} via {self.get_source_display()}"


class Suppression(models.Model):
    """Addresses that must never be mailed or re-imported, stored only as a keyed hash."""

    class Reason(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", _("Hard bounce")
        SOFT_BOUNCES = "soft_bounces", _("Repeated soft bounces")
        COMPLAINT = "complaint", _("Spam complaint")
        ERASED = "erased", _("Erased on request")
        MANUAL = "manual", _("Suppressed by an operator")

    email_hash = models.CharField(max_length=64, unique=True)
    # suppression_key_id of the key that made email_hash; blank for entries made before keys were recorded.
    key_id = models.CharField(max_length=12, blank=True)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.email_hash[:12]}… ({self.get_reason_display()})"


class MailEvent(models.Model):
    """A bounce, complaint or ESP-side unsubscribe reported by an ESP's tracking webhook, recorded before it is
    acted on. The row makes webhook retries harmless (unique per ESP event id), lets a task take an id, counts
    soft bounces, and gives each issue its complaint rate. Erasure blanks `recipient` and `description`."""

    class Kind(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", _("Hard bounce")
        SOFT_BOUNCE = "soft_bounce", _("Soft bounce")
        COMPLAINT = "complaint", _("Spam complaint")
        UNSUBSCRIBE = "unsubscribe", _("Unsubscribed at the ESP")

    esp = models.CharField(max_length=32)
    event_id = models.CharField(max_length=255, blank=True)
    message_id = models.CharField(max_length=255, blank=True, db_index=True)
    recipient = models.EmailField(max_length=254, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    description = models.CharField(max_length=300, blank=True)
    issue = models.ForeignKey(
        "newsletter.Issue", null=True, blank=True, on_delete=models.SET_NULL, related_name="mail_events"
    )
    subscriber = models.ForeignKey(
        Subscriber, null=True, blank=True, on_delete=models.SET_NULL, related_name="mail_events"
    )
    # Set when the event names its delivery exactly (a signed VERP bounce address); ESP events are matched by
    # message id instead.
    delivery = models.ForeignKey(
        "newsletter.Delivery", null=True, blank=True, on_delete=models.SET_NULL, related_name="mail_events"
    )
    processed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Per recipient: one SES notification (one event id) reports every recipient of a multi-recipient
            # bounce, and each must be acted on.
            models.UniqueConstraint(
                fields=["esp", "event_id", "recipient"],
                condition=~models.Q(event_id=""),
                name="mail_event_once_per_recipient",
            )
        ]
        indexes = [models.Index(fields=["issue", "kind"], name="mail_event_issue_kind")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} via {self.esp}"


class Tag(models.Model):
    """A label on subscribers (from a CSV column, an admin action or the API) that segments select by."""

    name = models.CharField(max_length=64)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), name="tag_unique_name_ci")]

    def __str__(self) -> str:
        return self.name


class SubscriberTag(models.Model):
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="tag_links")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="subscriber_links")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subscriber", "tag"], name="subscriber_tag_once")]
        indexes = [models.Index(fields=["tag", "subscriber"], name="subscriber_tag_by_tag")]

    def __str__(self) -> str:
        return f"{self.subscriber_id} #{self.tag_id}"


class QuarantinedMail(models.Model):
    """Mail that came back to the inbound doors and could not be acted on (no signed bounce address, a forged one,
    not a bounce, complaint or unsubscribe, unreadable): kept for the operator with the reason, never dropped
    silently. Bounded: rows older than MASTHEAD['INBOUND_QUARANTINE_DAYS'] and beyond
    MASTHEAD['INBOUND_QUARANTINE_MAX'] are pruned, and each keeps at most INBOUND_QUARANTINE_MAX_BYTES of the
    message."""

    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    reason = models.CharField(max_length=300)
    door = models.CharField(max_length=16)  # pipe, smtp, imap
    envelope_sender = models.CharField(max_length=254, blank=True)
    envelope_recipient = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    size = models.PositiveIntegerField(default=0)
    truncated = models.BooleanField(default=False)
    raw = models.BinaryField()

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("quarantined mail")
        verbose_name_plural = _("quarantined mail")

    def __str__(self) -> str:
        return f"{self.subject or '(no subject)'}: {self.reason}"
