"""Address validation shared by every door (forms, import, admin): one notion of a valid, normalised address."""

from functools import lru_cache

from django.db.models.functions import Lower
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES, DOT_ATOM_TEXT

from newsletter.conf import app_settings

# RFC 5321 4.5.3.1: 64 octets before the @-sign, 254 in all (email-validator's limits).
_LOCAL_MAX, _ADDRESS_MAX = 64, 254


class InvalidAddress(ValueError):
    """The address is not a valid email address; the message says why, in words a person can act on."""


class UndeliverableAddress(InvalidAddress):
    """A valid address our mail transport can't deliver to: letters outside ASCII before the @ (they need
    SMTPUTF8, which MASTHEAD's SMTPUTF8 setting says the transport lacks)."""


def address_masked(email: str) -> str:
    """The address as a page that anyone holding a link may see shows it: "j•••@example.com"."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}\u2022\u2022\u2022@{domain}" if local else "\u2022\u2022\u2022"


def address_normalise(email: str) -> str:
    """Validate (syntax only: no DNS, so it is fast and works offline) and return the normalised address.

    The domain is lowercased and IDNA-normalised; the local part is kept as typed. Addresses are compared
    case-insensitively everywhere else (the unique index is on lower(email)).
    """
    raw = (email or "").strip()
    if not raw:
        raise InvalidAddress("empty address")
    if any(ch in raw for ch in "\r\n\0"):
        raise InvalidAddress("the address contains a line break or control character")
    if fast := _plain_address(raw):
        return fast
    try:
        result = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from exc
    if not result.ascii_email and not app_settings.SMTPUTF8:
        raise UndeliverableAddress(
            "the part before the @ has letters outside plain English (A–Z); our mail server can't deliver to such "
            "addresses yet"
        )
    return result.normalized


def _plain_address(raw: str) -> str | None:
    """The normalised form of the common case, an ASCII dot-atom local part at a valid ASCII domain, without
    email-validator's full parse; None sends anything else through it. Validating the domain is most of the
    cost and a list has few distinct domains, so its result is cached (100,000 addresses: 10 s → under 1 s).
    The same rules as validate_email (tests/subscribers/test_import.py compares the two on awkward addresses)."""
    local, at, domain = raw.rpartition("@")
    if not at or not raw.isascii() or len(raw) > _ADDRESS_MAX or len(local) > _LOCAL_MAX:
        return None
    if not DOT_ATOM_TEXT.match(local) or local.lower() in CASE_INSENSITIVE_MAILBOX_NAMES:
        return None
    normal_domain = _domain_normalised(domain)
    if normal_domain is None:
        return None
    address = f"{local}@{normal_domain}"
    return address if len(address) <= _ADDRESS_MAX else None


@lru_cache(maxsize=4096)
def _domain_normalised(domain: str) -> str | None:
    """The normalised form of an ASCII domain that stays ASCII, else None (invalid or internationalised)."""
    try:
        normal = validate_email(f"a@{domain}", check_deliverability=False).domain
    except EmailNotValidError:
        return None
    return normal if normal.isascii() else None


def name_clean(name: str) -> str:
    """A display name with every control character (CR, LF, tabs…) and run of whitespace collapsed to one space,
    so a name can never break a header or a line of text."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in (name or "")).split())[:200]


def subscribers_by_address(queryset, email: str):
    """Filter `queryset` (of Subscriber) to the address, case-insensitively, through the lower(email) index."""
    return queryset.alias(email_lower=Lower("email")).filter(email_lower=email.strip().lower())
