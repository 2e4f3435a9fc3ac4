"""The consent ledger: one append-only ConsentEvent per change to a person's consent.

IP addresses are kept as the operator chose (CONSENT_IP_MODE): "full", "truncated" (IPv4 /24,
IPv6 /48: enough to show roughly where consent came from, not who) or "hashed" (a keyed hash: proves a match
with a known address, reveals nothing on its own).
"""

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass

from newsletter.conf import app_settings
from subscribers.models import ConsentEvent, Subscriber

USER_AGENT_MAX = 300


@dataclass(frozen=True)
class RequestMeta:
    """Where a change came from: the client's IP and user agent as the web request gave them."""

    ip: str = ""
    user_agent: str = ""

    @classmethod
    def from_request(cls, request) -> "RequestMeta":
        return cls(ip=request.META.get("REMOTE_ADDR", ""), user_agent=request.META.get("HTTP_USER_AGENT", ""))


NO_REQUEST = RequestMeta()


def consent_ip(ip: str, mode: str | None = None) -> str:
    """The IP as the ledger keeps it. Anything that is not an IP address is dropped rather than stored."""
    mode = mode or app_settings.CONSENT_IP_MODE
    try:
        address = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return ""
    if mode == "full":
        return str(address)
    if mode == "hashed":
        key = app_settings.SUPPRESSION_HASH_KEY.encode()
        return "hmac:" + hmac.new(key, b"ip:" + address.packed, hashlib.sha256).hexdigest()[:40]
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def consent_event(
    subscriber: Subscriber | None,
    kind: str,
    source: str,
    *,
    newsletter=None,
    meta: RequestMeta = NO_REQUEST,
    consent_text: str = "",
    policy_version: str = "",
    detail: str = "",
) -> ConsentEvent:
    """Build (unsaved) a ledger row; callers save it, or bulk_create many."""
    return ConsentEvent(
        subscriber=subscriber,
        newsletter=newsletter,
        kind=kind,
        source=source,
        policy_version=policy_version[:32],
        consent_text=consent_text,
        ip_address=consent_ip(meta.ip),
        user_agent=meta.user_agent[:USER_AGENT_MAX],
        detail=detail[:300],
    )


def consent_record(subscriber: Subscriber | None, kind: str, source: str, **kwargs) -> ConsentEvent:
    """Append one row to the ledger (see consent_event for the arguments)."""
    event = consent_event(subscriber, kind, source, **kwargs)
    event.save()
    return event
