"""What every transport promises: open once per batch, send one recipient's message, say how it went, close.

A recipient's result is an `Outcome` (sent, deferred, failed) with the server's code and text; `classify` turns an
SMTP-style reply into one. A transport that cannot be opened raises `TransportError` and the batch is deferred.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from newsletter.delivery.messages import Personalised, Recipient, Skeleton


class Outcome(StrEnum):
    SENT = "sent"
    DEFERRED = "deferred"  # try again later (4xx, a lost connection)
    FAILED = "failed"  # permanent (5xx)


class Scope(StrEnum):
    """What a refusal is about, so one reader's problem stays that reader's and an issue-wide one stops the issue."""

    RECIPIENT = "recipient"  # this address (RCPT), or a reply that names nothing else
    MESSAGE = "message"  # this message's content (the reply to DATA): if every message gets it, the issue does
    SENDER = "sender"  # us: our envelope sender or our account (MAIL FROM 5xx, an ESP's 401/403): every message


@dataclass(frozen=True)
class Result:
    """One recipient's result: the outcome, the server's words, and what follows from them."""

    outcome: Outcome
    code: str = ""
    text: str = ""
    hard_bounce: bool = False  # the address itself is bad: suppress it
    connection_lost: bool = False  # the transport must reconnect before the next message
    provider_id: str = ""  # an ESP's own message id (webhooks report by it); SMTP has only our Message-ID
    scope: Scope = Scope.RECIPIENT


SENT = Result(Outcome.SENT)


def classify(code: int, text: bytes | str, scope: Scope = Scope.RECIPIENT) -> Result:
    """4xx: try again later. 5xx: permanent; a hard bounce only when the reply is about the address (a RCPT reply)
    and blames it (RFC 3463 5.1.x, or 550/551/553 without an enhanced code), not when it blames content or policy
    (5.7.x). `scope` says what the reply was to: the recipient, the message (DATA) or the sender (MAIL FROM)."""
    message = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    message = message.replace("\r", " ").replace("\n", " ")[:1000]
    if 400 <= code < 500:
        return Result(Outcome.DEFERRED, str(code), message)
    enhanced = message.split(" ", 1)[0]
    hard = enhanced.startswith("5.1.") or (not enhanced[:1].isdigit() and code in (550, 551, 553))
    return Result(Outcome.FAILED, str(code), message, hard_bounce=scope == Scope.RECIPIENT and hard, scope=scope)


class TransportError(ConnectionError):
    """The transport could not be opened (refused, TLS failure, bad credentials): the batch is deferred."""


class Transport(Protocol):
    def open(self) -> None:
        """Connect. Raises TransportError when the mail server or ESP cannot be reached or refuses us."""

    def send(
        self,
        skeleton: Skeleton,
        recipient: Recipient,
        message: Personalised,
        data: bytes,
        upcoming: Recipient | None = None,
    ) -> Result:
        """Hand one message over. Never raises for a refusal or a lost connection: that is a Result. `upcoming`
        is the recipient the batch will send to next, when it knows (a transport may prepare that message)."""

    def close(self) -> None:
        """Best effort; outcomes are already recorded."""
