"""Is a hit a person or a machine? Decided from what the request and its timing show, kept as a verdict only.

Two stages, because the evidence arrives in two places:

- `request_flags`, during the request: the method (HEAD), prefetch headers, scanner user agents and networks,
  and the two image proxies (Apple Mail Privacy Protection, Gmail). The IP address and user agent are read
  here and never leave this function: only the flags are queued.
- `verdicts`, when the queued hits are flushed: timing. A hit within a few seconds of the message being sent
  (ENGAGEMENT_MACHINE_SECONDS), and several links of one message hit within one second (a scanner opening
  every link; people click one at a time), are machines.

Apple's proxy fetches every image when the message arrives, whether or not the reader reads it: such an open is
reported apart, never as a human one. Gmail's proxy fetches when the reader opens the message: reported apart
too, since it says nothing of the reader's device.
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from engagement.models import OPEN, Verdict
from newsletter.conf import app_settings

HEAD = 1
PREFETCH = 2
SCANNER_AGENT = 4
SCANNER_NETWORK = 8
APPLE_PROXY = 16
GOOGLE_PROXY = 32
ESP_BOT = 64
MACHINE_FLAGS = HEAD | PREFETCH | SCANNER_AGENT | SCANNER_NETWORK | ESP_BOT

# Substrings (lower case) of user agents that are mail security scanners, link expanders or scripts.
SCANNER_AGENTS = (
    "barracuda", "mimecast", "proofpoint", "urldefense", "safelinks", "symantec", "messagelabs", "forcepoint",
    "trendmicro", "trend micro", "ironport", "cisco", "fortiguard", "sophos", "zscaler", "checkpoint", "avanan",
    "bitdefender", "kaspersky", "hornetsecurity", "spamtitan", "libraesva", "vade", "agari", "abnormal",
    "python-requests", "python-urllib", "aiohttp", "curl/", "wget/", "go-http-client", "okhttp", "java/",
    "libwww-perl", "headlesschrome", "phantomjs", "bot", "crawler", "spider", "preview", "facebookexternalhit",
    "slack", "whatsapp", "telegram", "discord", "skypeuripreview", "microsoft office existence",
)  # fmt: skip
# Networks that only scanners click from: Microsoft's Exchange Online Protection, Mimecast, Proofpoint,
# Barracuda. Extend with ENGAGEMENT_SCANNER_NETWORKS.
SCANNER_NETWORKS = (
    "40.92.0.0/15", "40.107.0.0/16", "52.100.0.0/14", "104.47.0.0/17",
    "207.211.30.0/24", "205.139.110.0/24", "216.205.24.0/24", "170.10.128.0/24", "185.58.84.0/22",
    "67.231.144.0/20", "148.163.128.0/19", "185.132.180.0/22",
    "64.235.144.0/20", "209.222.80.0/21", "35.174.145.124/30",
)  # fmt: skip
# Apple's own network; Mail Privacy Protection's fetcher also announces itself with a bare "Mozilla/5.0".
APPLE_NETWORKS = ("17.0.0.0/8",)
PREFETCH_HEADERS = {
    "HTTP_PURPOSE": "prefetch",
    "HTTP_SEC_PURPOSE": "prefetch",
    "HTTP_X_MOZ": "prefetch",
    "HTTP_X_PURPOSE": "preview",
}


@lru_cache(maxsize=4)
def _networks(extra: tuple[str, ...], kind: str) -> tuple:
    names = (SCANNER_NETWORKS if kind == "scanner" else APPLE_NETWORKS) + extra
    return tuple(ipaddress.ip_network(n.strip(), strict=False) for n in names if n.strip())


def _in(ip: str, networks: tuple) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in networks if network.version == address.version)


@lru_cache(maxsize=16384)
def _address_flags(ip: str, extra: tuple[str, ...]) -> int:
    """The flags an address earns (kept per process for the addresses seen lately: a scanner clicks a lot)."""
    flags = APPLE_PROXY if _in(ip, _networks((), "apple")) else 0
    return flags | (SCANNER_NETWORK if _in(ip, _networks(extra, "scanner")) else 0)


_SCANNER_AGENT = re.compile("|".join(re.escape(s) for s in SCANNER_AGENTS))


def request_flags(method: str, meta: Mapping[str, str], ip: str, user_agent: str) -> int:
    """The classifier's flags for one request (`meta`: the WSGI environ's HTTP_* headers). IP and user agent
    are read, not kept."""
    flags = 0
    if method == "HEAD":
        flags |= HEAD
    for header, value in PREFETCH_HEADERS.items():
        if value in meta.get(header, "").lower():
            flags |= PREFETCH
    agent = user_agent.lower()
    if "googleimageproxy" in agent or "ggpht.com" in agent:
        return flags | GOOGLE_PROXY
    address = _address_flags(ip, tuple(app_settings.ENGAGEMENT_SCANNER_NETWORKS))
    if user_agent.strip() == "Mozilla/5.0" or address & APPLE_PROXY:
        flags |= APPLE_PROXY
    elif not agent or _SCANNER_AGENT.search(agent):
        flags |= SCANNER_AGENT
    return flags | (address & SCANNER_NETWORK)


@dataclass(frozen=True)
class QueuedHit:
    """A hit as queued: what the token said, when, and the request's flags. No IP, no user agent."""

    issue_id: int
    number: int  # 0: the open pixel
    variant: int
    sent: int  # unix seconds the message was personalised (≈ sent), from the token
    delivery_id: int  # 0 unless per-reader
    at: float
    flags: int

    def record(self) -> str:
        return f"{self.issue_id}|{self.number}|{self.variant}|{self.sent}|{self.delivery_id}|{self.at:.3f}|{self.flags}"

    @classmethod
    def parse(cls, record: str | bytes) -> QueuedHit | None:
        if isinstance(record, bytes):
            record = record.decode("ascii", "replace")
        try:
            issue, number, variant, sent, delivery, at, flags = record.split("|")
            return cls(int(issue), int(number), int(variant), int(sent), int(delivery), float(at), int(flags))
        except ValueError:
            return None

    @property
    def message_key(self) -> tuple[int, int, int, int]:
        """What identifies a message as well as the token allows: in aggregate mode its variant and send second
        (a few messages share it), in per-reader mode its delivery."""
        return (self.issue_id, self.variant, self.sent, self.delivery_id)


def verdict(hit: QueuedHit, burst: bool = False) -> Verdict:
    """One hit's verdict from its flags, timing and whether it was part of a burst."""
    if hit.number == OPEN:
        if hit.flags & GOOGLE_PROXY:
            return Verdict.GOOGLE_PROXY
        if hit.flags & APPLE_PROXY:
            return Verdict.APPLE_MPP
    if hit.flags & MACHINE_FLAGS or burst:
        return Verdict.MACHINE
    if hit.sent and hit.at - hit.sent < app_settings.ENGAGEMENT_MACHINE_SECONDS:
        return Verdict.MACHINE
    return Verdict.HUMAN


def verdicts(
    hits: Iterable[QueuedHit], context: Iterable[QueuedHit] = (), links_in_issue: Mapping[int, int] | None = None
) -> list[Verdict]:
    """Verdicts of `hits`, in order. `context`: later hits not flushed yet, which may complete a burst.
    `links_in_issue`: how many tracked links each issue has (a burst needs ENGAGEMENT_BURST_LINKS distinct links,
    or every link of a smaller issue, and always at least two)."""
    hits = list(hits)
    by_message: dict[tuple, list[QueuedHit]] = defaultdict(list)
    for hit in [*hits, *context]:
        if hit.number != OPEN:
            by_message[hit.message_key].append(hit)
    in_burst: set[int] = set()
    wanted = app_settings.ENGAGEMENT_BURST_LINKS
    for key, group in by_message.items():
        links = max(2, min(wanted, (links_in_issue or {}).get(key[0], wanted)))
        if len({h.number for h in group}) < links:
            continue
        group.sort(key=lambda h: h.at)
        start = 0
        for end in range(len(group)):
            while group[end].at - group[start].at > 1.0:
                start += 1
            window = group[start : end + 1]
            if len({h.number for h in window}) >= links:
                in_burst.update(id(h) for h in window)
    return [verdict(hit, id(hit) in in_burst) for hit in hits]
