"""Signed, purpose-salted tokens for every link put into an email.

A token carries the subscriber's random `token` UUID (never a database id) and is signed with SECRET_KEY; Django's
signer also accepts SECRET_KEY_FALLBACKS, so links survive a key rotation. The salt differs per purpose, so an
unsubscribe token can never be replayed as a confirmation or a data-export token.

`make_token` runs twice per recipient of every issue, so it writes Django's `signing.dumps` format itself rather
than through the Signer: the same bytes (`signing.loads` reads them; a test holds the two equal), without deriving
the HMAC key again for every token.
"""

import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from django.conf import settings
from django.core import signing
from django.utils.encoding import force_bytes

from newsletter.conf import app_settings


class Purpose(StrEnum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"
    EXPORT = "export"
    ERASE = "erase"
    BOUNCE = "bounce"  # VERP envelope senders: identifies one delivery


# None: no expiry. Unsubscribe and preferences links must keep working for as long as an old email sits in an inbox.
MAX_AGE: dict[Purpose, timedelta | None] = {
    Purpose.CONFIRM: timedelta(days=7),
    Purpose.UNSUBSCRIBE: None,
    Purpose.PREFERENCES: None,
    Purpose.EXPORT: timedelta(days=2),
    Purpose.ERASE: timedelta(days=2),
    Purpose.BOUNCE: None,  # bounces arrive days later, complaints weeks later
}


def purpose_max_age(purpose: Purpose) -> timedelta | None:
    """The purpose's expiry; the operator sets the confirmation one (CONFIRMATION_MAX_AGE_DAYS)."""
    if purpose == Purpose.CONFIRM:
        days = app_settings.CONFIRMATION_MAX_AGE_DAYS
        if days:
            return timedelta(days=days)
    return MAX_AGE[purpose]


class BadToken(Exception):
    """The token is forged, truncated, for another purpose, or expired. `expired` says which for the page."""

    def __init__(self, expired: bool = False):
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


@dataclass(frozen=True)
class TokenData:
    subscriber_token: str
    newsletter: str  # a newsletter slug, or "" when the token is not about one newsletter


def _salt(purpose: Purpose) -> str:
    return f"masthead.subscribers.{purpose}"


# (purpose, SECRET_KEY) -> the derived HMAC key. Keyed by the secret, so a changed SECRET_KEY is used at once.
_keys: dict[tuple[Purpose, str | bytes], bytes] = {}
_stamp: tuple[int, str] = (-1, "")


def _signing_key(purpose: Purpose, secret: str | bytes | None = None) -> bytes:
    """Django's Signer key for this salt: salted_hmac derives sha256(key_salt + secret) on every call, where
    key_salt is the Signer's salt plus "signer" (django/core/signing.py, Signer.signature). Derived once here."""
    secret = settings.SECRET_KEY if secret is None else secret
    key = _keys.get((purpose, secret))
    if key is None:
        if len(_keys) > 64:  # tests change SECRET_KEY; never let old secrets pile up
            _keys.clear()
        key = _keys[(purpose, secret)] = hashlib.sha256(
            force_bytes(_salt(purpose) + "signer") + force_bytes(secret)
        ).digest()
    return key


def _timestamp() -> str:
    """TimestampSigner's timestamp (base 62 of the Unix second), encoded once a second."""
    global _stamp
    now = int(time.time())
    if _stamp[0] != now:
        _stamp = (now, signing.b62_encode(now))
    return _stamp[1]


def _plain(value: str) -> bool:
    """True when json.dumps would write `value` unchanged between quotes (printable ASCII, no quote or backslash)."""
    return value.isascii() and value.isprintable() and '"' not in value and "\\" not in value


def make_token(purpose: Purpose, subscriber_token, newsletter: str = "") -> str:
    """`signing.dumps(payload, salt=_salt(purpose))`, byte for byte: b64(JSON) ":" b62(time) ":" b64(HMAC-SHA256)."""
    payload = [str(subscriber_token), newsletter] if newsletter else [str(subscriber_token)]
    if all(_plain(p) for p in payload):  # UUIDs and slugs: JSON is the strings in quotes, no escaping to do
        data = ('["' + '","'.join(payload) + '"]').encode()
    else:
        data = json.dumps(payload, separators=(",", ":")).encode("latin-1")  # signing.JSONSerializer
    value = f"{signing.b64_encode(data).decode()}:{_timestamp()}"
    signature = hmac.digest(_signing_key(purpose), value.encode(), "sha256")
    return f"{value}:{signing.b64_encode(signature).decode()}"


def read_token(purpose: Purpose, token: str, max_age: timedelta | None = ...) -> TokenData:
    """Return the token's contents or raise BadToken. `max_age` defaults to the purpose's own."""
    if max_age is ...:
        max_age = purpose_max_age(purpose)
    try:
        payload = signing.loads(token, salt=_salt(purpose), max_age=max_age)
    except signing.SignatureExpired as exc:
        raise BadToken(expired=True) from exc
    except signing.BadSignature as exc:
        raise BadToken() from exc
    if not isinstance(payload, list) or not payload or not all(isinstance(p, str) for p in payload):
        raise BadToken()
    return TokenData(subscriber_token=payload[0], newsletter=payload[1] if len(payload) > 1 else "")


# --- short tokens for addresses -----------------------------------------------------------------------------------
# A VERP envelope sender carries its token in the local part, which SMTP limits to 64 octets and which some MTAs
# lower-case. So these tokens are a number in base 36 and an 80-bit truncated HMAC in lower-case base 32, keyed like
# make_token (same secret, per-purpose salt), about 20 characters: "<base36 number>-<16 base-32 characters>".
_SHORT = re.compile(r"^([0-9a-z]{1,13})-([a-z2-7]{16})$")


def _short_mac(purpose: Purpose, number: str, secret: str | bytes | None = None) -> str:
    digest = hmac.digest(_signing_key(purpose, secret), f"short:{number}".encode(), "sha256")
    return base64.b32encode(digest[:10]).decode().lower()


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out


def make_short_token(purpose: Purpose, number: int) -> str:
    """A signed token for a positive integer, safe in an address's local part (lower case, letters, digits, "-")."""
    if number < 0:
        raise ValueError("short tokens carry non-negative numbers")
    text = _base36(number)
    return f"{text}-{_short_mac(purpose, text)}"


def read_short_token(purpose: Purpose, token: str) -> int:
    """The number in a short token, or BadToken. Case-insensitive (MTAs may change the case of a local part);
    tokens signed with a SECRET_KEY_FALLBACKS key still read, like every other link."""
    match = _SHORT.match(token.strip().lower())
    if not match:
        raise BadToken()
    text, mac = match.groups()
    for secret in (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])):
        if hmac.compare_digest(mac, _short_mac(purpose, text, secret)):
            return int(text, 36)
    raise BadToken()
