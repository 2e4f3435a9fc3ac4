"""The one service every inbound door calls (`receive_mail` on a pipe, `inbound_smtp`, `fetch_bounces` over IMAP).

`inbound_receive(raw, recipient, …)` reads one message that came back and acts on it through the same services as
the ESP webhooks (bounces.mail_event_store / mail_event_process): a hard bounce suppresses, a soft bounce counts
toward SOFT_BOUNCE_LIMIT, a complaint suppresses and counts toward its issue's complaint auto-pause, and the
delivery row records what came back. A mail to the List-Unsubscribe mailto unsubscribes the reader its signed
token names, recorded in the consent ledger with the source "mailto". Auto-replies are ignored. Anything else
lands in the quarantine with the reason.

The outcome carries the answer each door gives: a sendmail exit status (0 accepted, 65 bad data, 67 no such
user, 75 try later) and the equivalent SMTP reply.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from email.utils import getaddresses, parseaddr
from enum import StrEnum
from functools import lru_cache
from urllib.parse import unquote

from django.core.cache import cache
from django.db import DatabaseError, transaction
from django.utils import timezone

from newsletter.conf import app_settings
from newsletter.models import Newsletter
from subscribers.models import ConsentEvent, Subscriber
from subscribers.tokens import BadToken, Purpose, read_token

from ..bounces import mail_event_process, mail_event_store
from ..unsubscribe import subscriber_unsubscribe
from .attribute import delivery_attribute, is_bounce_address
from .parse import Kind, Report, message_parse, text_clean
from .quarantine import mail_quarantine

log = logging.getLogger("masthead.inbound")

EX_OK, EX_DATAERR, EX_NOUSER, EX_TEMPFAIL = 0, 65, 67, 75  # sysexits.h, as sendmail's pipes expect


class Door(StrEnum):
    PIPE = "pipe"
    SMTP = "smtp"
    IMAP = "imap"


@dataclass(frozen=True)
class Outcome:
    action: str  # what was done, for the log and the tests
    exit_code: int
    smtp_reply: str
    detail: str = ""

    @property
    def accepted(self) -> bool:
        return self.exit_code == EX_OK


def _accepted(action: str, detail: str = "") -> Outcome:
    return Outcome(action, EX_OK, "250 2.0.0 OK: " + action, detail)


TRY_LATER = Outcome("try later", EX_TEMPFAIL, "451 4.3.0 Temporary failure, please try again later")
RATE_LIMITED = Outcome("rate limited", EX_TEMPFAIL, "451 4.7.1 Too many messages, slow down and try later")
NO_SUCH_USER = Outcome("no such user", EX_NOUSER, "550 5.1.1 No such user here")


# --- recipients -----------------------------------------------------------------------------------------------


@lru_cache(maxsize=1024)  # a pure function of its string; the same few settings addresses come every message
def _bare(address: str) -> str:
    return (parseaddr(address)[1] or address).strip().strip("<>").lower()


def is_unsubscribe_address(address: str) -> bool:
    mailto = _bare(app_settings.UNSUBSCRIBE_MAILTO)
    local, _, domain = mailto.rpartition("@")
    got_local, _, got_domain = _bare(address).rpartition("@")
    return got_domain == domain and (got_local == local or got_local.startswith(local + "+"))


def recipient_accepted(address: str) -> bool:
    """Whether the doors take mail for `address`: our bounce addresses, the unsubscribe mailto, and
    MASTHEAD['INBOUND_ADDRESSES'] (a feedback loop's registered address)."""
    extra = {_bare(a) for a in app_settings.INBOUND_ADDRESSES if a}
    return is_bounce_address(address) or is_unsubscribe_address(address) or _bare(address) in extra


def envelope_recipient(msg: Message) -> str:
    """The recipient a pipe was not told: Delivered-To (Postfix, Exim, qmail add it), X-Original-To, else To."""
    for name in ("Delivered-To", "X-Original-To", "To"):
        try:
            values = msg.get_all(name) or []
        except Exception:  # noqa: BLE001
            continue
        for _display, address in getaddresses([str(v) for v in values]):
            if address and recipient_accepted(address):
                return address
    return ""


# --- flood control --------------------------------------------------------------------------------------------


def inbound_rate_allows() -> bool:
    """A fixed one-minute window shared through the cache (Redis in production): a flood of bounces is answered
    "try later" rather than spent on the database; the sending MTAs retry, so nothing is lost."""
    limit = app_settings.INBOUND_RATE_PER_MINUTE
    if not limit:
        return True
    key = f"masthead:inbound:{int(time.time() // 60)}"
    cache.add(key, 0, 120)
    try:
        return cache.incr(key) <= limit
    except ValueError:  # the key expired between add and incr
        cache.add(key, 1, 120)
        return True


# --- the service ----------------------------------------------------------------------------------------------


def _event_id(msg: Message, raw: bytes) -> str:
    """Identity of a message that came back, so an MTA redelivering it (after a 4xx) is acted on once."""
    try:
        message_id = text_clean(str(msg.get("Message-ID") or "")).strip()
    except Exception:  # noqa: BLE001
        message_id = ""
    return message_id[:200] or "sha256:" + hashlib.sha256(raw).hexdigest()


def inbound_receive(raw: bytes, recipient: str = "", sender: str = "", door: str = Door.PIPE) -> Outcome:
    """Read one message that came back and act on it. Never raises for bad input: malformed mail is logged and
    quarantined; a database failure is "try later" (the sender keeps the message and retries).

    `recipient` is the envelope recipient; without it (a pipe not given one) it is read from the headers. Mail
    fetched from a mailbox (door imap) is taken whatever it was addressed to: the mailbox is ours."""
    if not raw.strip():
        log.warning("inbound: empty message via %s from %r refused", door, sender)
        return Outcome("empty message", EX_DATAERR, "554 5.6.0 Empty message")
    if len(raw) > app_settings.INBOUND_MAX_BYTES:
        log.warning("inbound: %s-byte message via %s from %r refused (too big)", len(raw), door, sender)
        return Outcome("too big", EX_DATAERR, "552 5.3.4 Message too big for this address")
    try:
        # compat32: headers stay strings until asked for; the modern policy's header objects cost ~10x more
        # per message and nothing here needs them.
        msg = message_from_bytes(raw)
    except Exception as exc:  # the parser is lenient; this is for the truly unexpected  # noqa: BLE001
        log.warning("inbound: unparseable message via %s: %s", door, exc)
        msg = None
    if not recipient and msg is not None:
        recipient = envelope_recipient(msg)
    if door != Door.IMAP and not recipient_accepted(recipient):
        log.info("inbound: refused mail for %r via %s (not an inbound address)", recipient, door)
        return NO_SUCH_USER
    if not inbound_rate_allows():
        log.warning("inbound: rate limit reached; answered try-later to mail for %r via %s", recipient, door)
        return RATE_LIMITED
    try:
        # One transaction per message: one commit (the costly part of writing) for the event, the suppression,
        # the ledger and the delivery row together, and all or nothing if anything fails.
        with transaction.atomic():
            if msg is None:
                mail_quarantine(raw, "unparseable message", door, None, sender, recipient)
                return _accepted("quarantined", "unparseable message")
            return _dispatch(raw, msg, recipient, sender, door)
    except DatabaseError:
        log.exception("inbound: database error on mail for %r via %s; answered try-later", recipient, door)
        return TRY_LATER


def _dispatch(raw: bytes, msg: Message, recipient: str, sender: str, door: str) -> Outcome:
    report = message_parse(msg)
    if recipient and is_unsubscribe_address(recipient) and report.kind not in (Kind.HARD_BOUNCE, Kind.SOFT_BOUNCE):
        if report.kind == Kind.AUTO_REPLY:
            return _ignored("auto-reply ignored", report, recipient)
        return _unsubscribe(raw, msg, recipient, sender, door)
    if report.kind == Kind.AUTO_REPLY:
        return _ignored("auto-reply ignored", report, recipient)
    if report.kind == Kind.DELAYED:
        return _ignored("delay notice ignored", report, recipient)
    if report.kind == Kind.OTHER:
        reason = report.detail or "not a bounce, complaint or auto-reply"
        mail_quarantine(raw, reason, door, msg, sender, recipient)
        return _accepted("quarantined", reason)
    addresses = ([recipient] if recipient else []) + report.token_addresses
    attribution = delivery_attribute(addresses)
    if attribution.transactional:
        log.info("inbound: %s of a transactional email for %s ignored", report.kind, _who(report))
        return _accepted("transactional bounce ignored")
    if attribution.delivery is None:
        mail_quarantine(raw, f"{report.kind} not attributed: {attribution.problem}", door, msg, sender, recipient)
        return _accepted("quarantined", attribution.problem)
    return _act(raw, msg, report, attribution.delivery)


def _who(report: Report) -> str:
    return ", ".join(f.recipient for f in report.failures) or "an unnamed recipient"


def _ignored(action: str, report: Report, recipient: str) -> Outcome:
    log.info("inbound: %s for %r (%s)", action, recipient, report.detail or report.parser)
    return _accepted(action, report.detail)


def _act(raw: bytes, msg: Message, report: Report, sent) -> Outcome:
    # VERP names one delivery: the failure for its address if the report lists several, else the first.
    failure = next((f for f in report.failures if f.recipient.lower() == sent.email.lower()), None)
    failure = failure or (report.failures[0] if report.failures else None)
    description = " ".join(p for p in (failure.status, failure.diagnostic) if p) if failure else report.detail
    event, created = mail_event_store(
        esp="inbound",
        event_id=_event_id(msg, raw),
        kind=str(report.kind),
        recipient=sent.email,
        message_id=sent.message_id,
        description=description or report.parser,
        delivery_id=sent.id,
        # What the row says once acted on below, in this same transaction: written once, not inserted then updated.
        issue_id=sent.issue_id,
        subscriber_id=sent.subscriber_id,
        processed_at=timezone.now(),
    )
    if not created:
        return _accepted("already recorded", f"event {event.pk}")
    outcome = mail_event_process(event, source=ConsentEvent.Source.INBOUND, sent=sent, just_stored=True)
    log.info("inbound: %s for delivery %s (%s, %s): %s", report.kind, sent.id, report.parser, description, outcome)
    return _accepted(outcome, description)


# The List-Unsubscribe mailto's subject is "unsubscribe <token>" (messages.py); mail clients send it as written,
# some with the %3A still encoded, some quoting it in a reply's subject.
_UNSUBSCRIBE_TOKEN = re.compile(r"([A-Za-z0-9_-]+(?::|%3[Aa])[0-9A-Za-z]+(?::|%3[Aa])[A-Za-z0-9_-]{20,})")


def _unsubscribe(raw: bytes, msg: Message, recipient: str, sender: str, door: str) -> Outcome:
    subject = str(msg.get("Subject") or "")
    candidates = _UNSUBSCRIBE_TOKEN.findall(subject) + _UNSUBSCRIBE_TOKEN.findall(unquote(recipient))
    for candidate in candidates:
        try:
            data = read_token(Purpose.UNSUBSCRIBE, unquote(candidate))
        except BadToken:
            continue
        subscriber = Subscriber.objects.filter(token=data.subscriber_token).first()
        if subscriber is None:
            return _accepted("unsubscribe for someone no longer on file")
        newsletter = Newsletter.objects.filter(slug=data.newsletter).first() if data.newsletter else None
        changed = subscriber_unsubscribe(subscriber, newsletter, source=ConsentEvent.Source.MAILTO)
        log.info("inbound: mailto unsubscribe of subscriber %s from %s", subscriber.pk, data.newsletter or "all")
        return _accepted("unsubscribed" if changed else "already unsubscribed")
    reason = "unsubscribe request without a valid token" if candidates else "unsubscribe request without a token"
    mail_quarantine(raw, reason, door, msg, sender, recipient)
    return _accepted("quarantined", reason)


__all__ = [
    "Door",
    "EX_DATAERR",
    "EX_NOUSER",
    "EX_OK",
    "EX_TEMPFAIL",
    "Outcome",
    "inbound_rate_allows",
    "inbound_receive",
    "recipient_accepted",
]
