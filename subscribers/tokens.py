"""Signed, purpose-salted tokens for every link put into an email.

A token carries the subscriber's random `token` UUID (never a database id) and is signed with SECRET_KEY; Django's
signer also accepts SECRET_KEY_FALLBACKS, so links survive a key rotation. The salt differs per purpose, so an
unsubscribe token can never be replayed as a confirmation or a data-export token.
"""

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from django.conf import settings
from django.core import signing


class Purpose(StrEnum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"
    EXPORT = "export"
    ERASE = "erase"


# None: no expiry. Unsubscribe and preferences links must keep working for as long as an old email sits in an inbox.
MAX_AGE: dict[Purpose, timedelta | None] = {
    Purpose.CONFIRM: timedelta(days=7),
    Purpose.UNSUBSCRIBE: None,
    Purpose.PREFERENCES: None,
    Purpose.EXPORT: timedelta(days=2),
    Purpose.ERASE: timedelta(days=2),
}


def purpose_max_age(purpose: Purpose) -> timedelta | None:
    """The purpose's expiry; the operator sets the confirmation one (MASTHEAD['CONFIRMATION_MAX_AGE_DAYS'])."""
    if purpose == Purpose.CONFIRM:
        days = getattr(settings, "MASTHEAD", {}).get("CONFIRMATION_MAX_AGE_DAYS")
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


def make_token(purpose: Purpose, subscriber_token, newsletter: str = "") -> str:
    payload = [str(subscriber_token), newsletter] if newsletter else [str(subscriber_token)]
    return signing.dumps(payload, salt=_salt(purpose), compress=False)


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
