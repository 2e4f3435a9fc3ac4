"""Email that is not an issue (a confirmation, an export link) through the same transport settings as issues: with
SMTP, the same TLS verification (SMTP_TLS_CA_FILE, SMTP_VERIFY_TLS, never a plaintext fallback) and the same DKIM
signature; any other backend (an ESP, locmem in tests) sends it itself."""

from __future__ import annotations

from email.utils import make_msgid, parseaddr

from django.conf import settings
from django.core.mail import EmailMessage

from newsletter.delivery.messages import dkim_enabled, dkim_sign, wire_address
from newsletter.delivery.transports import SMTP_BACKEND, SmtpTransport


def transactional_send(message: EmailMessage) -> None:
    """Send one message now. Raises TransportError (a ConnectionError: worth retrying) when the server cannot be
    reached or answers "try later", smtplib.SMTPResponseException when it refuses the message for good."""
    if "message-id" not in {name.lower() for name in message.extra_headers}:
        # On our mail domain, not the host's name (Django's default is often @localhost).
        message.extra_headers["Message-ID"] = make_msgid(domain=settings.MAIL_DOMAIN)
    if settings.EMAIL_BACKEND != SMTP_BACKEND:
        message.send()
        return
    mail_from = wire_address(parseaddr(message.from_email)[1])
    data = message.message().as_bytes(linesep="\r\n")
    if dkim_enabled():
        data = dkim_sign(data, mail_from)
    transport = SmtpTransport()
    try:
        transport.send_bytes(mail_from, [wire_address(r) for r in message.recipients()], data)
    finally:
        transport.close()
