"""The quarantine: mail the inbound doors accepted but could not act on, kept for the operator with the reason.

Bounded so that a flood of junk can't fill the database: each row keeps at most INBOUND_QUARANTINE_MAX_BYTES of
the message, rows older than INBOUND_QUARANTINE_DAYS go, and beyond INBOUND_QUARANTINE_MAX rows the oldest go.
Pruning runs on insert (the age cut every time, cheap on the indexed date; the count cut every 100th insert).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from email.header import decode_header, make_header
from email.message import Message

from django.utils import timezone

from newsletter.conf import app_settings
from subscribers.models import QuarantinedMail

from .parse import text_clean

log = logging.getLogger("masthead.inbound")


def _text(msg: Message | None, name: str, limit: int) -> str:
    """A header for display: RFC 2047 words decoded, control characters gone, one line."""
    if msg is None:
        return ""
    try:
        value = str(msg.get(name) or "")
        with contextlib.suppress(ValueError, LookupError, UnicodeError):  # a broken encoded word: shown as it is
            value = str(make_header(decode_header(value)))
        return " ".join(text_clean(value).split())[:limit]
    except Exception:  # a header too broken to decode  # noqa: BLE001
        return ""


def mail_quarantine(
    raw: bytes, reason: str, door: str, msg: Message | None = None, sender: str = "", recipient: str = ""
) -> QuarantinedMail:
    limit = app_settings.INBOUND_QUARANTINE_MAX_BYTES
    row = QuarantinedMail.objects.create(
        reason=text_clean(reason)[:300],
        door=door,
        envelope_sender=text_clean(sender)[:254],
        envelope_recipient=text_clean(recipient)[:254],
        subject=_text(msg, "Subject", 300),
        message_id=_text(msg, "Message-ID", 255),
        size=len(raw),
        truncated=len(raw) > limit,
        raw=raw[:limit],
    )
    log.warning("inbound: quarantined message %s (%s bytes via %s): %s", row.pk, len(raw), door, reason)
    quarantine_prune(every=100, row_id=row.pk)
    return row


def quarantine_prune(every: int = 1, row_id: int = 0) -> int:
    """Delete what is beyond the quarantine's age and size bounds. Returns how many rows went."""
    cutoff = timezone.now() - timedelta(days=app_settings.INBOUND_QUARANTINE_DAYS)
    deleted, _ = QuarantinedMail.objects.filter(received_at__lt=cutoff).delete()
    if row_id % every == 0:
        keep = app_settings.INBOUND_QUARANTINE_MAX
        boundary = list(QuarantinedMail.objects.order_by("-id").values_list("id", flat=True)[keep : keep + 1])
        if boundary:
            deleted += QuarantinedMail.objects.filter(id__lte=boundary[0]).delete()[0]
    return deleted
