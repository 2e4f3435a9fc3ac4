"""Absolute URLs put into emails. Built from SITE_URL and a signed token; called per recipient, so no reverse()."""

from django.conf import settings

from .tokens import Purpose, make_short_token, make_token


def unsubscribe_url(subscriber_token, newsletter_slug: str) -> str:
    """The page with the one-button unsubscribe (GET shows it, POST unsubscribes)."""
    return f"{settings.SITE_URL}/u/{make_token(Purpose.UNSUBSCRIBE, subscriber_token, newsletter_slug)}/"


def one_click_url(subscriber_token, newsletter_slug: str) -> str:
    """RFC 8058 List-Unsubscribe target: POST List-Unsubscribe=One-Click unsubscribes at once."""
    return f"{settings.SITE_URL}/u/{make_token(Purpose.UNSUBSCRIBE, subscriber_token, newsletter_slug)}/one-click/"


def preferences_url(subscriber_token) -> str:
    return f"{settings.SITE_URL}/preferences/{make_token(Purpose.PREFERENCES, subscriber_token)}/"


def confirm_url(subscriber_token, newsletter_slug: str = "") -> str:
    """The page with the Confirm button. With a slug, confirming also (re)subscribes to that newsletter."""
    return f"{settings.SITE_URL}/confirm/{make_token(Purpose.CONFIRM, subscriber_token, newsletter_slug)}/"


def export_url(subscriber_token) -> str:
    """Downloads the person's data as JSON; expires (tokens.MAX_AGE[EXPORT])."""
    return f"{settings.SITE_URL}/privacy/export/{make_token(Purpose.EXPORT, subscriber_token)}/"


def bounce_domain() -> str:
    return settings.MASTHEAD["BOUNCE_DOMAIN"] or settings.MAIL_DOMAIN


def unsubscribe_mailto() -> str:
    """The address of every issue's List-Unsubscribe mailto (RFC 2369)."""
    return getattr(settings, "UNSUBSCRIBE_MAILTO", "") or f"unsubscribe@{settings.MAIL_DOMAIN}"


def bounce_address(delivery_id: int) -> str:
    """The VERP envelope sender of one delivery: MASTHEAD['BOUNCE_LOCAL_PART']+<signed token>@BOUNCE_DOMAIN. A
    bounce sent to it names its delivery exactly; a forged or altered token is refused (tokens.read_short_token)."""
    local = settings.MASTHEAD["BOUNCE_LOCAL_PART"]
    return f"{local}+{make_short_token(Purpose.BOUNCE, delivery_id)}@{bounce_domain()}"


def transactional_return_path() -> str:
    """Envelope sender of confirmations and export links: their bounces are told apart from an issue's."""
    return f"{settings.MASTHEAD['BOUNCE_LOCAL_PART']}-transactional@{bounce_domain()}"
