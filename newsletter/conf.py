"""Every Masthead setting, declared once: its name, type, default and meaning (allauth's AppSettings, typed).

`config/settings/base.py` fills `settings.MASTHEAD` from the environment with `masthead_from_env()`; code reads a
value as an attribute of `app_settings` (`app_settings.SEND_BATCH_SIZE`), never with `MASTHEAD.get(name,
default)`. The value is looked up at each access, so a test that replaces `settings.MASTHEAD` sees its override.

This module imports nothing from the apps, so the settings module can import it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

from django.conf import settings

T = TypeVar("T")


@dataclass
class Setting(Generic[T]):
    """One setting: read from the environment variable of the same name (`kind` says how to parse it)."""

    default: T
    kind: type
    doc: str
    # For an empty value: a default derived from other settings (SITE_URL, MAIL_DOMAIN), computed when read.
    fallback: Callable[[], T] | None = None
    name: str = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> Setting[T]: ...
    @overload
    def __get__(self, instance: object, owner: type) -> T: ...
    def __get__(self, instance, owner):
        if instance is None:
            return self
        value = getattr(settings, "MASTHEAD", {}).get(self.name, self.default)
        if not value and self.fallback is not None:
            return self.fallback()
        return value

    def from_env(self, env: Any) -> T:
        reader = {str: env.str, int: env.int, float: env.float, bool: env.bool, dict: env.dict, list: env.list}[
            self.kind
        ]
        return reader(self.name, default=self.default)


class MastheadSettings:
    # Sending
    SEND_BATCH_SIZE = Setting(200, int, "rows a worker claims per batch")
    SEND_LEASE_SECONDS = Setting(15, int, "a claim's lease, renewed by its live batch; a dead worker's rows return")
    SEND_BATCH_SECONDS = Setting(60, int, "how long one batch task sends before the next link of its chain goes on")
    SEND_CHAINS = Setting(4, int, "batch chains per issue running at once (at least the bulk worker processes)")
    SEND_MAX_ATTEMPTS = Setting(6, int, "attempts before a deferred row fails")
    SEND_RETRY_BASE_SECONDS = Setting(60.0, float, "first retry delay; doubles per attempt, ±25 % jitter")
    SEND_RETRY_MAX_SECONDS = Setting(3600.0, float, "longest retry delay")
    SEND_ASYNC_COMMIT = Setting(True, bool, "outcome writes skip PostgreSQL's WAL flush wait (see Design)")
    RATE_PER_SECOND = Setting(0.0, float, "messages per second for all workers together; 0: unlimited")
    RATE_PER_HOUR = Setting(0, int, "messages per hour for all workers together; 0: unlimited")
    RATE_PER_DOMAIN_PER_MINUTE = Setting(0, int, "messages per minute per recipient domain; 0: unlimited")
    SMTP_TLS_CA_FILE = Setting("", str, "trust only this CA file for SMTP TLS (a private CA, a local relay)")
    SMTPUTF8 = Setting(
        False, bool, "the mail transport delivers to addresses with non-ASCII local parts (SMTPUTF8, RFC 6531)"
    )
    SMTP_VERIFY_TLS = Setting(True, bool, "verify the SMTP server's certificate; false only for a local relay")
    UNSUBSCRIBE_MAILTO = Setting(
        "", str, "the mailto of List-Unsubscribe", lambda: f"unsubscribe@{settings.MAIL_DOMAIN}"
    )
    # Readers
    COMPLAINT_PAUSE_RATE = Setting(0.001, float, "an issue pauses above this complaint rate")
    SOFT_BOUNCE_LIMIT = Setting(3, int, "soft bounces before an address is suppressed")
    CONFIRMATION_MAX_AGE_DAYS = Setting(7, int, "double opt-in link lifetime")
    CONFIRMATION_RESEND_INTERVAL_MINUTES = Setting(15, int, "at most one confirmation email per interval")
    PRIVACY_POLICY_URL = Setting("", str, "named at signup", lambda: f"{settings.SITE_URL}/privacy/")
    TERMS_URL = Setting("", str, "named at signup", lambda: f"{settings.SITE_URL}/terms/")
    POLICY_VERSION = Setting("2026-01", str, "recorded with every consent")
    CONSENT_IP_MODE = Setting("truncated", str, "how the consent ledger keeps IPs: full, truncated or hashed")
    SUPPRESSION_HASH_KEY = Setting("", str, "key of the suppression list's address hashes", lambda: settings.SECRET_KEY)
    SUPPRESSION_HASH_KEY_FALLBACKS = Setting(
        [], list, "old suppression keys, comma-separated: tried on every lookup until suppression_rehash moves them"
    )
    PUBLIC_FORM_MAX_BYTES = Setting(16384, int, "largest body a public form takes (413 above); no file uploads")
    RATE_LIMITS = Setting({}, dict, "public form limits overriding the defaults, e.g. signup_ip=30/h")
    TRUSTED_PROXIES = Setting(
        "", str, "proxies whose X-Forwarded-For is believed: a count (1) or CIDRs (10.0.0.0/8,192.0.2.10)"
    )
    # Mail that comes back (subscribers/services/inbound/)
    VERP = Setting(True, bool, "issue mail leaves with the delivery's own signed envelope sender (VERP)")
    BOUNCE_LOCAL_PART = Setting("bounces", str, "local part of the VERP and transactional return paths")
    BOUNCE_DOMAIN = Setting(
        "", str, "domain of the return paths (its MX reaches an inbound door)", lambda: settings.MAIL_DOMAIN
    )
    SNS_CERT_URL_PATTERN = Setting(
        r"https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[A-Za-z0-9_./-]+\.pem",
        str,
        "the URLs an SES webhook's SNS signing certificate may come from (a regular expression, matched whole)",
    )
    MAILGUN_WEBHOOK_MAX_AGE_SECONDS = Setting(300, int, "a Mailgun webhook's signature older than this is refused")
    INBOUND_ADDRESSES = Setting([], list, "more addresses the inbound doors accept (a feedback loop's)")
    INBOUND_RATE_PER_MINUTE = Setting(6000, int, "messages per minute the inbound doors take; then 'try later'")
    INBOUND_MAX_BYTES = Setting(10 * 1024 * 1024, int, "larger inbound messages are refused")
    INBOUND_QUARANTINE_MAX = Setting(10000, int, "rows the quarantine keeps at most")
    INBOUND_QUARANTINE_DAYS = Setting(30, int, "days the quarantine keeps a message")
    INBOUND_QUARANTINE_MAX_BYTES = Setting(256 * 1024, int, "bytes of each quarantined message kept")
    BOUNCE_IMAP_URL = Setting("", str, "imaps://user:password@host/INBOX for `manage.py fetch_bounces`")
    # Engagement reports (engagement/)
    ENGAGEMENT_MACHINE_SECONDS = Setting(10.0, float, "a hit this soon after its message was sent is a machine's")
    ENGAGEMENT_BURST_LINKS = Setting(3, int, "this many links of one message within a second: a scanner (min 2)")
    ENGAGEMENT_SCANNER_NETWORKS = Setting([], list, "more networks (CIDRs) whose hits are scanners'")
    ENGAGEMENT_RETENTION_DAYS = Setting(90, int, "per-reader events are rolled into the counts and deleted after")
    ENGAGEMENT_UNSUBSCRIBE_DAYS = Setting(7, int, "an unsubscribe this soon after an issue is attributed to it")
    ENGAGEMENT_SNAPSHOT_DAYS = Setting(30, int, "finished issues' delivery figures are re-counted by beat this long")
    # Editing
    IMPORT_ALLOW_PRIVATE_URLS = Setting(False, bool, "article import by URL may reach internal addresses")
    # Images: emails need absolute URLs, so MEDIA_URL is joined to this host unless the storage already gives
    # absolute ones (an S3 bucket, a CDN custom domain).
    MEDIA_HOST = Setting("", str, "host put before MEDIA_URL in emails", lambda: settings.SITE_URL)
    SERVE_MEDIA = Setting(True, bool, "the app serves MEDIA_URL itself; false when a proxy or the store does")
    IMAGE_MAX_UPLOAD_MB = Setting(20, int, "largest image upload accepted")
    # REST API (/api/v1/) and outgoing webhooks
    API_RATE_PER_TOKEN = Setting("600/m", str, "API requests per token (a django-ratelimit rate)")
    API_AUTH_FAILURES_PER_IP = Setting("30/m", str, "failed API authentications per client IP")
    API_IDEMPOTENCY_HOURS = Setting(24.0, float, "how long an Idempotency-Key is remembered")
    WEBHOOK_TIMEOUT_SECONDS = Setting(10.0, float, "one webhook request's timeout")
    WEBHOOK_LEASE_SECONDS = Setting(60.0, float, "a claimed webhook delivery whose worker died is retried after this")
    WEBHOOK_RETRY_BASE_SECONDS = Setting(30.0, float, "first webhook retry delay; doubles per attempt, ±25 % jitter")
    WEBHOOK_RETRY_MAX_SECONDS = Setting(6 * 3600.0, float, "longest webhook retry delay")
    WEBHOOK_RETRY_HOURS = Setting(72.0, float, "webhook retries stop this long after the event")
    WEBHOOK_DISABLE_AFTER_HOURS = Setting(72.0, float, "an endpoint failing without a success this long is disabled")
    WEBHOOK_ALLOW_PRIVATE_URLS = Setting(False, bool, "webhooks may go to loopback/private/link-local addresses")
    WEBHOOK_LOG_DAYS = Setting(30, int, "finished webhook events and their delivery log are kept this many days")

    @property
    def VAR_DIR(self) -> Path:
        """Where local state lives (SQLite, the filesystem broker, the rate-limit file, caught mail)."""
        return Path(settings.VAR_DIR)


def declared() -> dict[str, Setting]:
    """Every declared setting by name."""
    return {name: value for name, value in vars(MastheadSettings).items() if isinstance(value, Setting)}


def masthead_from_env(env: Any) -> dict[str, Any]:
    """settings.MASTHEAD: every declared setting, read from the environment variable of its name."""
    return {name: setting.from_env(env) for name, setting in declared().items()}


app_settings = MastheadSettings()
