"""The IMAP door: fetch what a provider's mailbox collected for the bounce address, act on each message, delete
only the messages acted on (accepted or quarantined). A message answered "try later" (the database down, the rate
limit) stays in the mailbox for the next run."""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from imapclient import IMAPClient

from .receive import Door, inbound_receive

log = logging.getLogger("masthead.inbound")


class MailboxError(ValueError):
    """BOUNCE_IMAP_URL is missing or malformed."""


@dataclass(frozen=True)
class MailboxConfig:
    host: str
    port: int
    user: str
    password: str
    folder: str
    tls: bool  # imaps: TLS from the start; imap: STARTTLS (a plaintext login is never sent)
    verify: bool = True


def mailbox_config(url: str, verify: bool = True) -> MailboxConfig:
    """imaps://user:password@host[:993]/INBOX or imap://…[:143]/Folder (STARTTLS)."""
    if not url:
        raise MailboxError("BOUNCE_IMAP_URL is not set (imaps://user:password@host/INBOX)")
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
        raise MailboxError("BOUNCE_IMAP_URL must look like imaps://user:password@host/INBOX")
    return MailboxConfig(
        host=parts.hostname,
        port=parts.port or (993 if parts.scheme == "imaps" else 143),
        user=unquote(parts.username),
        password=unquote(parts.password or ""),
        folder=unquote(parts.path.lstrip("/")) or "INBOX",
        tls=parts.scheme == "imaps",
        verify=verify,
    )


@dataclass
class FetchResult:
    seen: int = 0
    acted: int = 0
    kept: int = 0  # answered "try later": left in the mailbox


def bounces_fetch(config: MailboxConfig, limit: int = 500, ssl_context: ssl.SSLContext | None = None) -> FetchResult:
    """One pass over the mailbox. Safe to run twice at once: a message acted on twice is recorded once (its
    event id), and a UID already deleted by the other run is simply gone."""
    context = ssl_context or ssl.create_default_context()
    if not config.verify:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    result = FetchResult()
    with IMAPClient(config.host, port=config.port, ssl=config.tls, ssl_context=context, timeout=60) as client:
        if not config.tls:
            client.starttls(context)
        client.login(config.user, config.password)
        client.select_folder(config.folder)
        uids = client.search(["NOT", "DELETED"])[:limit]
        done = []
        for start in range(0, len(uids), 50):
            chunk = uids[start : start + 50]
            fetched = client.fetch(chunk, ["BODY.PEEK[]"])
            for uid in sorted(fetched):  # oldest first, as they arrived
                result.seen += 1
                outcome = inbound_receive(fetched[uid][b"BODY[]"], door=Door.IMAP)
                if outcome.exit_code == 75:
                    result.kept += 1
                    continue
                done.append(uid)
        if done:
            client.delete_messages(done)
            if client.has_capability("UIDPLUS"):
                client.uid_expunge(done)  # only ours, even if another client flagged others \Deleted
            else:
                client.expunge()
        result.acted = len(done)
    log.info("inbound imap: %s seen, %s acted on and deleted, %s kept", result.seen, result.acted, result.kept)
    return result
