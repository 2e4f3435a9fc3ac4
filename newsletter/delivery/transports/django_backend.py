"""Any Django email backend as a transport. ESPs sign and encode themselves, so the message is built from its parts
(the skeleton's text and HTML with the recipient's values), one send_messages() per recipient so each recipient
gets its own result."""

from __future__ import annotations

import contextlib
from email.utils import formataddr

from anymail.exceptions import AnymailError, AnymailRecipientsRefused
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection

from newsletter import placeholders
from newsletter.delivery.messages import Personalised, Recipient, Skeleton

from .base import Outcome, Result, Scope, TransportError

# anymail's per-recipient statuses that mean the ESP will never deliver to this address.
REFUSED_STATUSES = ("rejected", "invalid")


class DjangoBackendTransport:
    def __init__(self) -> None:
        self.connection = None

    def open(self) -> None:
        try:
            self.connection = get_connection(fail_silently=False)
            self.connection.open()
        except Exception as exc:  # backends raise their own types: all mean "not now"
            raise TransportError(f"{settings.EMAIL_BACKEND}: {exc}") from exc

    def send(
        self,
        skeleton: Skeleton,
        recipient: Recipient,
        message: Personalised,
        data: bytes,
        upcoming: Recipient | None = None,  # an SMTP pipelining hint; a backend sends one message at a time
    ) -> Result:
        if self.connection is None:
            self.open()
        links = message.links
        email = EmailMultiAlternatives(
            subject=skeleton.subject,
            body=placeholders.substitute(skeleton.text, message.values.for_text()),
            from_email=skeleton.from_header,
            to=[formataddr((message.values.name, recipient.email)) if message.values.name else recipient.email],
            reply_to=[skeleton.reply_to] if skeleton.reply_to else None,
            headers={
                "Message-ID": message.message_id,
                "List-Id": skeleton.list_id,
                "List-Unsubscribe": f"<{links.one_click_url}>, <mailto:{skeleton.mailto}?subject=unsubscribe%20"
                f"{links.mailto_token}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
            connection=self.connection,
        )
        email.attach_alternative(placeholders.substitute(skeleton.html, message.values.for_html()), "text/html")
        try:
            sent = self.connection.send_messages([email])
        except Exception as exc:  # the backend's own types; sorted out in one place
            return backend_error(exc)
        status = getattr(email, "anymail_status", None)
        if status is not None and status.recipients:
            result = next(iter(status.recipients.values()))
            if result.status in REFUSED_STATUSES:
                # The ESP will never deliver to this address (its own suppression list, or malformed): suppress it.
                text = f"{settings.EMAIL_BACKEND}: {result.status}"
                return Result(Outcome.FAILED, result.status, text, hard_bounce=True)
            return Result(Outcome.SENT, provider_id=str(result.message_id or "")[:255])
        return Result(Outcome.SENT) if sent else Result(Outcome.DEFERRED, "", "backend reported nothing sent")

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):  # best effort; the batch's outcomes are already recorded
                self.connection.close()
            self.connection = None


def backend_error(exc: Exception) -> Result:
    """What a backend's exception means for this recipient: refused (failed, suppressed), our account refused (401,
    403: the API key or the account; every message would fail, so the issue pauses), a client error of the ESP's
    API that retrying cannot fix (failed), anything else (deferred, reconnect)."""
    text = str(exc)[:1000]
    if isinstance(exc, AnymailRecipientsRefused):
        return Result(Outcome.FAILED, "refused", text, hard_bounce=True)
    code = exc.status_code if isinstance(exc, AnymailError) else getattr(exc, "status_code", None)
    if code in (401, 403):
        return Result(Outcome.FAILED, str(code), text, scope=Scope.SENDER)
    if isinstance(code, int) and 400 <= code < 500 and code not in (408, 429):
        return Result(Outcome.FAILED, str(code), text)
    return Result(Outcome.DEFERRED, str(code or ""), f"{type(exc).__name__}: {exc}"[:1000], connection_lost=True)
