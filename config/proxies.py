"""The client's address behind trusted reverse proxies (TRUSTED_PROXIES, newsletter/conf.py).

Behind a TLS proxy every request comes from the proxy, so REMOTE_ADDR is the proxy's address: the whole site would
share one signup rate limit and the consent ledger would record the proxy. X-Forwarded-For says who the client
is, but anyone can send that header, so it is believed only hop by hop from a trusted peer:

- a count N ("1" for one nginx in front): the peer and the N-1 addresses it reports are proxies; the client is
  the N-th address from the right of X-Forwarded-For. Use it only when the app is reachable through the proxies
  alone (it binds to loopback or a private network).
- CIDRs ("10.0.0.0/8,192.0.2.10"): a peer in them is a proxy; the header is walked from the right, past every
  address in them, and the first one outside is the client.
- unset: X-Forwarded-For is ignored, REMOTE_ADDR is the client.

The middleware runs first and rewrites REMOTE_ADDR, so every consumer (rate limits, the consent ledger, logs)
sees the same client address; the peer's own address is kept in META["MASTHEAD_PEER_ADDR"].
"""

import ipaddress
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from newsletter.conf import app_settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# What a proxy tells us about the client; dropped from requests that did not come through one of ours.
FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_FORWARDED")


@dataclass(frozen=True)
class TrustedProxies:
    count: int = 0
    networks: tuple[Network, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.count or self.networks)

    def trusts(self, address: str, depth: int) -> bool:
        """Whether the hop `depth` steps in from the app (0: the peer itself) is one of our proxies."""
        if self.count:
            return depth < self.count
        if not address:  # a Unix socket peer: only a process on this machine can connect
            return depth == 0
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)


@lru_cache(maxsize=8)
def trusted_proxies(value: str) -> TrustedProxies:
    """Parse the setting: "" (none), a number of proxies, or comma-separated addresses and networks."""
    value = (value or "").strip()
    if not value:
        return TrustedProxies()
    if value.isdigit():
        return TrustedProxies(count=int(value))
    networks = []
    for part in value.split(","):
        try:
            networks.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"TRUSTED_PROXIES: {part.strip()!r} is neither a number of proxies nor an IP address or network "
                "(examples: TRUSTED_PROXIES=1, TRUSTED_PROXIES=10.0.0.0/8,192.0.2.10)"
            ) from exc
    return TrustedProxies(networks=tuple(networks))


def _hop(entry: str) -> str | None:
    """One X-Forwarded-For entry as a bare IP address ("[2001:db8::1]:443" and "192.0.2.1:80" allowed), or None."""
    entry = entry.strip()
    if entry.startswith("["):
        entry = entry[1:].split("]", 1)[0]
    elif entry.count(":") == 1:
        entry = entry.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(entry))
    except ValueError:
        return None


def client_address(peer: str, forwarded_for: str, proxies: TrustedProxies) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the first address, walking
    X-Forwarded-For from the right, that is not one of ours. An unreadable entry ends the walk: nothing left of
    it was written by a proxy we trust."""
    if not proxies.enabled or not forwarded_for or not proxies.trusts(peer, 0):
        return peer
    address = peer
    for depth, entry in enumerate(reversed(forwarded_for.split(",")), start=1):
        hop = _hop(entry)
        if hop is None:
            break
        address = hop
        if not proxies.trusts(hop, depth):
            break
    return address


class TrustedProxyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        trusted_proxies(app_settings.TRUSTED_PROXIES)  # a bad value stops the start, not a request

    def __call__(self, request):
        proxies = trusted_proxies(app_settings.TRUSTED_PROXIES)
        if proxies.enabled:
            peer = request.META.get("REMOTE_ADDR", "")
            request.META["MASTHEAD_PEER_ADDR"] = peer
            request.META["REMOTE_ADDR"] = client_address(peer, request.META.get("HTTP_X_FORWARDED_FOR", ""), proxies)
            if not proxies.trusts(peer, 0):
                # Not from our proxy: its forwarding headers are the client's own claims, so neither the address
                # nor "this came over https" (BEHIND_PROXY's X-Forwarded-Proto) may be believed further in.
                for header in FORWARDING_HEADERS:
                    request.META.pop(header, None)
        return self.get_response(request)


@checks.register(checks.Tags.security, deploy=True)
def proxies_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Behind a proxy without TRUSTED_PROXIES every visitor has the proxy's address: warn the operator."""
    if settings.SECURE_PROXY_SSL_HEADER and not trusted_proxies(app_settings.TRUSTED_PROXIES).enabled:
        return [
            checks.Warning(
                "BEHIND_PROXY is on but TRUSTED_PROXIES is not set: every visitor has the proxy's address, so the "
                "whole site shares one signup rate limit and the consent ledger records the proxy.",
                hint="Set TRUSTED_PROXIES to the proxy's address or network (e.g. 127.0.0.1 or 10.0.0.0/8), or 1.",
                id="masthead.W001",
            )
        ]
    return []
