"""Short signed tokens of tracked links and the open pixel.

A tracked URL is `/r/<link>.<reader>`: `link` is fixed in the issue's message (issue id and link number, signed)
and `reader` is the per-recipient part substituted like the other personal values (variant, send time, and the
delivery id only in per-reader mode for a reader who agreed; signed together with the issue id, so a reader part
from another issue never fits). One HMAC per recipient, whatever the number of links. The pixel is
`/o/<link 0>.<reader>.gif`.

Both parts are base64url of LEB128 integers followed by 6 bytes of HMAC-SHA256 under a key derived from
SECRET_KEY (the fallbacks verify too, so links survive a key rotation). 48 bits make guessing pointless: every
failed guess costs a request and the answer is a 404.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

SIG_BYTES = 6
_SALT = b"masthead.engagement.link:"


@lru_cache(maxsize=8)
def _key(secret: str) -> bytes:
    return hashlib.sha256(_SALT + secret.encode()).digest()


@lru_cache(maxsize=8)
def _keys_for(secret: str, fallbacks: tuple[str, ...]) -> tuple[bytes, ...]:
    return (_key(secret), *(_key(k) for k in fallbacks))


def _keys() -> tuple[bytes, ...]:
    return _keys_for(settings.SECRET_KEY, tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ())))


def _sign(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")[:SIG_BYTES]


def _varints(*numbers: int) -> bytes:
    out = bytearray()
    for n in numbers:
        if n < 0:
            raise ValueError("negative")
        while True:
            byte, n = n & 0x7F, n >> 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                break
    return bytes(out)


def _read_varints(data: bytes, count: int) -> list[int] | None:
    numbers, value, shift = [], 0, 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if shift > 63:
            return None
        if not byte & 0x80:
            numbers.append(value)
            value, shift = 0, 0
    if shift or len(numbers) != count:
        return None
    return numbers


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes | None:
    if not text or len(text) > 64:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        return None
    # One spelling per token: a last character differing only in its unused bits is refused, not read as the same.
    return raw if _b64(raw) == text else None


def link_part(issue_id: int, number: int) -> str:
    """The fixed half of a tracked URL: the issue and the link's number there (0: the open pixel)."""
    payload = _varints(issue_id, number)
    return _b64(payload + _sign(_keys()[0], b"L" + payload))


def reader_part(issue_id: int, variant: int = 0, sent: int = 0, delivery_id: int = 0) -> str:
    """The per-recipient half: the variant, the send time (unix seconds, for the classifier, never stored) and,
    only for a per-reader measured delivery, its id (0 otherwise)."""
    payload = _varints(variant, sent, delivery_id)
    return _b64(payload + _sign(_keys()[0], b"R" + _varints(issue_id) + payload))


def _verified(raw: bytes | None, prefix: bytes, count: int) -> list[int] | None:
    if raw is None or len(raw) <= SIG_BYTES:
        return None
    payload, signature = raw[:-SIG_BYTES], raw[-SIG_BYTES:]
    if not any(hmac.compare_digest(signature, _sign(key, prefix + payload)) for key in _keys()):
        return None
    return _read_varints(payload, count)


@dataclass(frozen=True)
class Hit:
    issue_id: int
    number: int
    variant: int
    sent: int
    delivery_id: int


def hit_parse(token: str) -> Hit | None:
    """The link and reader a token names, or None when it is malformed, forged or mixes two issues' halves."""
    link, dot, reader = token.partition(".")
    if not dot:
        return None
    head = _verified(_unb64(link), b"L", 2)
    if head is None:
        return None
    issue_id, number = head
    tail = _verified(_unb64(reader), b"R" + _varints(issue_id), 3)
    if tail is None:
        return None
    return Hit(issue_id, number, *tail)


def click_url(issue_id: int, number: int, reader: str) -> str:
    return f"{settings.SITE_URL}/r/{link_part(issue_id, number)}.{reader}"


def pixel_url(issue_id: int, reader: str) -> str:
    return f"{settings.SITE_URL}/o/{link_part(issue_id, 0)}.{reader}.gif"
