"""Absolute URLs put into emails. Built from SITE_URL and a signed token; called per recipient, so no reverse()."""

from dataclasses import dataclass

from django.conf import settings

from newsletter.conf import app_settings

from .tokens import Purpose, make_short_token, make_token


def _unsubscribe_page(token: str) -> str:
    return f"{settings.SITE_URL}/u/{token}/"


def unsubscribe_url(subscriber_token, newsletter_slug: str) -> str:
    """The page with the one-button unsubscribe (GET shows it, POST unsubscribes)."""
    return _unsubscribe_page(make_token(Purpose.UNSUBSCRIBE, subscriber_token, newsletter_slug))


def one_click_url(subscriber_token, newsletter_slug: str) -> str:
    """RFC 8058 List-Unsubscribe target: POST List-Unsubscribe=One-Click unsubscribes at once."""
    return _unsubscribe_page(make_token(Purpose.UNSUBSCRIBE, subscriber_token, newsletter_slug)) + "one-click/"


@dataclass(frozen=True)
class MessageLinks:
    """Every personal link an issue email carries, from one signature per purpose."""

    unsubscribe_url: str  # the page with the button (the footer link)
    one_click_url: str  # RFC 8058 List-Unsubscribe target
    mailto_token: str  # the unsubscribe token, quoted for the List-Unsubscribe mailto's subject
    preferences_url: str


def message_links(subscriber_token, newsletter_slug: str) -> MessageLinks:
    """The links of one recipient's issue email. Per recipient on the sending path: two signatures, no parsing."""
    token = make_token(Purpose.UNSUBSCRIBE, subscriber_token, newsletter_slug)
    page = _unsubscribe_page(token)
    return MessageLinks(
        unsubscribe_url=page,
        one_click_url=page + "one-click/",
        # quote(token, safe=""), cheaper: a token is base64url, base 62 and ":" (tokens.make_token).
        mailto_token=token.replace(":", "%3A"),
        preferences_url=preferences_url(subscriber_token),
    )


def preferences_url(subscriber_token) -> str:
    return f"{settings.SITE_URL}/preferences/{make_token(Purpose.PREFERENCES, subscriber_token)}/"


def confirm_url(subscriber_token, newsletter_slug: str = "") -> str:
    """The page with the Confirm button. With a slug, confirming also (re)subscribes to that newsletter."""
    return f"{settings.SITE_URL}/confirm/{make_token(Purpose.CONFIRM, subscriber_token, newsletter_slug)}/"


def export_url(subscriber_token) -> str:
    """Downloads the person's data as JSON; expires (tokens.MAX_AGE[EXPORT])."""
    return f"{settings.SITE_URL}/privacy/export/{make_token(Purpose.EXPORT, subscriber_token)}/"


def erase_url(subscriber_token) -> str:
    """The page whose button erases the person; only ever sent to their address (expires: MAX_AGE[ERASE])."""
    return f"{settings.SITE_URL}/privacy/erase/{make_token(Purpose.ERASE, subscriber_token)}/"


def bounce_domain() -> str:
    return app_settings.BOUNCE_DOMAIN


def bounce_address(delivery_id: int) -> str:
    """The VERP envelope sender of one delivery: MASTHEAD['BOUNCE_LOCAL_PART']+<signed token>@BOUNCE_DOMAIN. A
    bounce sent to it names its delivery exactly; a forged or altered token is refused (tokens.read_short_token)."""
    local = app_settings.BOUNCE_LOCAL_PART
    return f"{local}+{make_short_token(Purpose.BOUNCE, delivery_id)}@{bounce_domain()}"


def transactional_return_path() -> str:
    """Envelope sender of confirmations and export links: their bounces are told apart from an issue's."""
    return f"{app_settings.BOUNCE_LOCAL_PART}-transactional@{bounce_domain()}"
