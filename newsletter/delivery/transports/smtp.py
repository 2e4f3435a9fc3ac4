"""SMTP (the default backend): one persistent smtplib connection per batch carrying the prebuilt bytes.

With PIPELINING a message costs one round trip: the envelope of the next message (MAIL, RCPT, DATA) goes in the
same write as this message's content, and the replies come back together (RFC 2920 allows DATA last in a group).
Only this message is ever in doubt: the next one's content is not sent until this one's 250 is read. A primed
envelope that is not used (the batch stops, or the next message is not the one announced) is dropped by closing
the connection, never by an empty message: a server discards a transaction whose data never ended.

TLS is required when configured: a server without STARTTLS, or whose certificate does not verify, is an error (the
batch is deferred) and nothing goes out in plaintext.
"""

from __future__ import annotations

import smtplib
import ssl

from django.conf import settings

from newsletter.conf import app_settings
from newsletter.delivery.messages import Personalised, Recipient, Skeleton

from .base import SENT, Outcome, Result, Scope, TransportError, classify

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def tls_context() -> ssl.SSLContext:
    """The client TLS context: the server's certificate and host name are verified (against the system CAs, or
    only SMTP_TLS_CA_FILE when set); SMTP_VERIFY_TLS = False is the explicit opt-out."""
    context = ssl.create_default_context(cafile=app_settings.SMTP_TLS_CA_FILE or None)
    if not app_settings.SMTP_VERIFY_TLS:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class SmtpTransport:
    def __init__(self) -> None:
        self.smtp: smtplib.SMTP | None = None
        self.options: list[str] = []
        self.pipelining = False
        # The next message's envelope, already sent, and the server's three replies to it (see the docstring).
        self.primed: tuple[bytes, list[tuple[int, bytes]]] | None = None

    def open(self) -> None:
        host, port, timeout = settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT
        try:
            if settings.EMAIL_USE_SSL:
                smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=tls_context())
            else:
                smtp = smtplib.SMTP(host, port, timeout=timeout)
            smtp.ehlo()
            if settings.EMAIL_USE_TLS:
                # Raises SMTPNotSupportedError when the server offers no STARTTLS, SSLError when its certificate
                # does not verify: both end the open here. Never a plaintext fallback.
                smtp.starttls(context=tls_context())
                smtp.ehlo()
            if settings.EMAIL_HOST_USER:
                smtp.login(settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD)
        except (OSError, smtplib.SMTPException) as exc:
            raise TransportError(f"SMTP {host}:{port}: {exc}") from exc
        self.smtp = smtp
        self.options = ["BODY=8BITMIME"] if smtp.has_extn("8bitmime") else []
        self.pipelining = smtp.has_extn("pipelining")

    def send(
        self,
        skeleton: Skeleton,
        recipient: Recipient,
        message: Personalised,
        data: bytes,
        upcoming: Recipient | None = None,
    ) -> Result:
        """Send one message. `upcoming`: the recipient the batch sends to next, whose envelope may then go out with
        this message's content (one round trip per message instead of two)."""
        if self.smtp is None:
            self.open()
        envelope = self._envelope(skeleton.envelope_sender(recipient.delivery_id), recipient.email)
        following = None
        if upcoming is not None and self.pipelining:
            following = self._envelope(skeleton.envelope_sender(upcoming.delivery_id), upcoming.email)
        try:
            return self._transaction(envelope, data, following)
        except smtplib.SMTPResponseException as exc:
            return classify(exc.smtp_code, exc.smtp_error)
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            return Result(Outcome.DEFERRED, "", f"connection: {exc}", connection_lost=True)

    def _envelope(self, mail_from: str, rcpt: str) -> bytes:
        options = b" " + b" ".join(o.encode() for o in self.options) if self.options else b""
        if not (mail_from + rcpt).isascii():
            options += b" SMTPUTF8"  # only reached with MASTHEAD's SMTPUTF8 on (RFC 6531)
        return b"MAIL FROM:<%s>%s\r\nRCPT TO:<%s>\r\n" % (mail_from.encode(), options, rcpt.encode())

    def _envelope_replies(self, envelope: bytes) -> list[tuple[int, bytes]]:
        """MAIL, RCPT and DATA for this envelope, and the three replies (fewer without PIPELINING when one fails).
        A primed envelope is used when it is this one; a different one is dropped with its connection."""
        if self.primed is not None:
            primed, replies = self.primed
            self.primed = None
            if primed == envelope:
                return replies
            self._drop()
            self.open()
        smtp = self.smtp
        if self.pipelining:
            smtp.send(envelope + b"DATA\r\n")
            return [smtp.getreply(), smtp.getreply(), smtp.getreply()]
        replies = []
        mail, _, rcpt = envelope.partition(b"\r\n")
        for command in (mail + b"\r\n", rcpt, b"DATA\r\n"):
            smtp.send(command)
            replies.append(smtp.getreply())
            if replies[-1][0] not in (250, 251, 354):
                break
        return replies

    def _transaction(self, envelope: bytes, data: bytes, following: bytes | None = None) -> Result:
        """One SMTP transaction for prebuilt bytes. smtplib's sendmail() would run a regex over the whole message
        to dot-stuff it (most of its cost for 37 KB); bytes.replace does the same in a tenth of the time.
        With PIPELINING MAIL, RCPT and DATA go in one write, and with `following` (the next envelope) in the same
        write as this content: one round trip per message."""
        replies = self._envelope_replies(envelope)
        smtp = self.smtp
        # Dot-stuffing (RFC 5321 4.5.2) by bytes.replace: the message is CRLF throughout (messages.py builds it).
        data = data.replace(b"\r\n.", b"\r\n..")
        if data.startswith(b"."):
            data = b"." + data
        mail, rcpt_reply, data_reply = (replies + [(503, b"not sent")] * 3)[:3]
        if data_reply[0] == 354 and (mail[0] != 250 or rcpt_reply[0] not in (250, 251)):
            smtp.send(b".\r\n")  # a server that accepted DATA anyway gets an empty message it will reject
            smtp.getreply()
        if mail[0] != 250:
            smtp.rset()
            return classify(*mail, scope=Scope.SENDER)  # the sender refused: not the address
        if rcpt_reply[0] not in (250, 251):
            smtp.rset()
            return classify(*rcpt_reply)
        if data_reply[0] != 354:
            smtp.rset()
            return classify(*data_reply, scope=Scope.MESSAGE)
        content = data + b".\r\n" if data.endswith(b"\r\n") else data + b"\r\n.\r\n"
        smtp.send(content + following + b"DATA\r\n" if following else content)
        code, text = smtp.getreply()
        if following:
            try:
                self.primed = (following, [smtp.getreply(), smtp.getreply(), smtp.getreply()])
            except (OSError, smtplib.SMTPException):
                self._drop()  # this message's reply is in: its outcome stands; the next one reconnects
        if code != 250:
            return classify(code, text, scope=Scope.MESSAGE)  # content refused, not the address
        return SENT

    def send_bytes(self, mail_from: str, recipients: list[str], data: bytes) -> None:
        """One transactional message (not an issue): raises TransportError (a ConnectionError: worth retrying) when
        the server is unreachable or says try later, smtplib.SMTPResponseException when it refuses for good."""
        if self.smtp is None:
            self.open()
        for rcpt in recipients:
            try:
                result = self._transaction(self._envelope(mail_from, rcpt), data)
            except (OSError, smtplib.SMTPException) as exc:
                self.close()
                raise TransportError(f"SMTP {settings.EMAIL_HOST}:{settings.EMAIL_PORT}: {exc}") from exc
            if result.outcome == Outcome.DEFERRED:
                raise TransportError(f"{result.code} {result.text}")
            if result.outcome == Outcome.FAILED:
                raise smtplib.SMTPResponseException(int(result.code), result.text)

    def _drop(self) -> None:
        """Close the socket without QUIT: a primed transaction's DATA never ends, so the server discards it."""
        self.primed = None
        if self.smtp is not None:
            self.smtp.close()
            self.smtp = None

    def close(self) -> None:
        if self.primed is not None:
            self._drop()
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (OSError, smtplib.SMTPException):
                self.smtp.close()
            self.smtp = None
