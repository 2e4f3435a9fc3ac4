"""Which delivery a message that came back is about: the signed token of its VERP address, and nothing else.

Every issue message leaves with the envelope sender BOUNCE_LOCAL_PART+<token>@BOUNCE_DOMAIN (links.bounce_address),
so its bounce is sent to that address and a feedback report names it (Original-Mail-From, the original's
Return-Path). The token is an HMAC over the delivery's id: a bounce to a forged or altered address is refused, and
the addresses or Message-IDs a report quotes are never trusted on their own (anyone can write them).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parseaddr
from functools import lru_cache

from newsletter import delivery
from newsletter.conf import app_settings
from subscribers import links
from subscribers.tokens import BadToken, Purpose, read_short_token


@dataclass(frozen=True)
class Attribution:
    delivery: delivery.DeliveryRef | None = None
    transactional: bool = False  # a bounce of a confirmation or export email
    problem: str = ""  # why nothing was attributed, for the quarantine


@lru_cache(maxsize=1024)  # pure; each message asks about the same address several times
def _split(address: str) -> tuple[str, str]:
    address = parseaddr(address)[1] or address
    local, _, domain = address.strip().strip("<>").rpartition("@")
    return local.lower(), domain.lower().rstrip(".")


def bounce_domain() -> str:
    return links.bounce_domain().lower()


def bounce_local_part() -> str:
    return app_settings.BOUNCE_LOCAL_PART.lower()


def is_bounce_address(address: str) -> bool:
    """Whether `address` is one of ours for bounces: the bare local part, +token, or -transactional."""
    local, domain = _split(address)
    base = bounce_local_part()
    return domain == bounce_domain() and (
        local == base or local.startswith(base + "+") or local == f"{base}-transactional"
    )


def token_of(address: str) -> str | None:
    """The VERP token in one of our bounce addresses, else None."""
    local, domain = _split(address)
    prefix = bounce_local_part() + "+"
    if domain != bounce_domain() or not local.startswith(prefix):
        return None
    return local[len(prefix) :]


def delivery_attribute(addresses: list[str]) -> Attribution:
    """The delivery named by the first token among `addresses` (the envelope recipient first). A token that
    fails its signature check attributes nothing, whatever else the message names."""
    for address in addresses:
        local, domain = _split(address)
        if domain == bounce_domain() and local == f"{bounce_local_part()}-transactional":
            return Attribution(transactional=True)
        token = token_of(address)
        if token is None:
            continue
        try:
            delivery_id = read_short_token(Purpose.BOUNCE, token)
        except BadToken:
            return Attribution(problem=f"forged or damaged bounce address {address} (its signature does not match)")
        sent = delivery.delivery_find(delivery_id)
        if sent is None:
            return Attribution(problem=f"the delivery of {address} no longer exists")
        return Attribution(delivery=sent)
    return Attribution(problem="no signed bounce address in it")
