"""Address validation shared by every door (forms, import, admin): one notion of a valid, normalised address."""

from email_validator import EmailNotValidError, validate_email


class InvalidAddress(ValueError):
    """The address is not a valid email address; the message says why, in words a person can act on."""


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
    try:
        result = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from exc
    return result.normalized


def name_clean(name: str) -> str:
    """A display name with every control character (CR, LF, tabs…) and run of whitespace collapsed to one space,
    so a name can never break a header or a line of text."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in (name or "")).split())[:200]


def subscribers_by_address(queryset, email: str):
    """Filter `queryset` (of Subscriber) to the address, case-insensitively, through the lower(email) index."""
    from django.db.models.functions import Lower

    return queryset.alias(email_lower=Lower("email")).filter(email_lower=email.strip().lower())
