"""One connection per batch to whatever sends mail: SMTP (prebuilt bytes over one smtplib connection) or any other
Django email backend (django-anymail's ESPs, locmem in tests)."""

from __future__ import annotations

from django.conf import settings

from .base import SENT, Outcome, Result, Scope, Transport, TransportError, classify
from .django_backend import DjangoBackendTransport
from .smtp import SMTP_BACKEND, SmtpTransport, tls_context


def transport_open() -> Transport:
    """Open the configured transport. Raises TransportError when it cannot be reached."""
    transport: Transport = SmtpTransport() if settings.EMAIL_BACKEND == SMTP_BACKEND else DjangoBackendTransport()
    transport.open()
    return transport


__all__ = [
    "SENT",
    "DjangoBackendTransport",
    "Outcome",
    "Result",
    "Scope",
    "SmtpTransport",
    "Transport",
    "TransportError",
    "classify",
    "tls_context",
    "transport_open",
]
