"""The SMTP door: an aiosmtpd server for a relay or an MX to hand bounces, complaints and mailto unsubscribes to.

It refuses unknown recipients at RCPT (550 5.1.1), so it is never an open relay and a sender learns at once that an
address is not ours; it answers every message with the outcome of inbound_receive (250, 451 try later, 552 too
big). The service runs in a small thread pool beside the event loop (the ORM is synchronous); an exception in it
is logged and answered 451, so bad input never stops the server.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from aiosmtpd.controller import Controller
from django.db import close_old_connections

from newsletter.conf import app_settings
from subscribers.services.inbound import Door, Outcome, inbound_receive, recipient_accepted

log = logging.getLogger("masthead.inbound")


def _receive(raw: bytes, recipient: str, sender: str) -> Outcome:
    close_old_connections()  # a long-running server: drop connections the database closed meanwhile
    try:
        return inbound_receive(raw, recipient=recipient, sender=sender, door=Door.SMTP)
    except Exception:  # noqa: BLE001
        log.exception("inbound smtp: failed on mail for %r; answered try-later", recipient)
        return Outcome("error", 75, "451 4.3.0 Temporary failure, please try again later")
    finally:
        close_old_connections()


class InboundHandler:
    def __init__(self, threads: int = 4):
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="inbound")

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if not recipient_accepted(address):
            log.info("inbound smtp: refused RCPT %r from %s", address, session.peer)
            return "550 5.1.1 No such user here"
        if len(envelope.rcpt_tos) >= 50:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        loop = asyncio.get_running_loop()
        raw = envelope.original_content or b""
        outcomes = [
            await loop.run_in_executor(self.executor, _receive, raw, rcpt, envelope.mail_from or "")
            for rcpt in envelope.rcpt_tos
        ]
        # One reply for the whole message: a temporary failure for any recipient asks for a retry (acting twice
        # on a retried message is prevented by its recorded event id), else the first refusal, else 250.
        for outcome in outcomes:
            if outcome.smtp_reply.startswith("4"):
                return outcome.smtp_reply
        for outcome in outcomes:
            if not outcome.accepted:
                return outcome.smtp_reply
        return "250 2.0.0 OK"


def inbound_controller(host: str = "127.0.0.1", port: int = 2525, threads: int = 4) -> Controller:
    """A started-on-demand server (call .start() / .stop()), for the command, the tests and the bench."""
    return Controller(
        InboundHandler(threads),
        hostname=host,
        port=port,
        server_hostname=app_settings.BOUNCE_DOMAIN,
        data_size_limit=app_settings.INBOUND_MAX_BYTES,
        decode_data=False,
        timeout=60,
    )
