"""The transactional emails a reader asks for: the double opt-in confirmation (or, for someone already subscribed,
a reminder with their preferences link) and the link to download their data.

Sent one at a time through Django's email API (not the bulk sender). Headers carry only validated addresses and
texts with line breaks removed, so nothing a reader typed can add a header; Django refuses CR/LF in headers too.
Each email is written in the subscriber's language (that of the page they signed up on), whatever language the
worker happens to run in.
"""

from email.utils import formataddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from newsletter import delivery
from subscribers import links
from subscribers.models import Subscriber, Subscription
from subscribers.tokens import MAX_AGE, Purpose

from .addresses import name_clean

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def _one_line(text: str) -> str:
    return name_clean(text)


def _send(subscriber: Subscriber, subject: str, template: str, context: dict, from_email: str = "") -> None:
    context = {
        **context,
        "subscriber": subscriber,
        "site_url": settings.SITE_URL,
        "LANGUAGE_CODE": translation.get_language(),
    }
    headers = {"Auto-Submitted": "auto-generated"}
    from_email = from_email or settings.DEFAULT_FROM_EMAIL
    if settings.EMAIL_BACKEND == SMTP_BACKEND:
        # Plain SMTP: the envelope sender is our transactional return path (its bounces are told apart from an
        # issue's); the From header stays. An ESP backend keeps its own return path and reports bounces itself.
        headers["From"], from_email = from_email, links.transactional_return_path()
    message = EmailMultiAlternatives(
        subject=_one_line(subject),
        body=render_to_string(f"subscribers/email/{template}.txt", context),
        from_email=from_email,
        to=[subscriber.email],  # the validated address alone: a display name typed by a reader never goes here
        headers=headers,
    )
    message.attach_alternative(render_to_string(f"subscribers/email/{template}.html", context), "text/html")
    delivery.transactional_send(message)  # the issues' transport settings: TLS verification, DKIM


def _newsletter_from(newsletter) -> str:
    return formataddr((_one_line(newsletter.from_name), newsletter.from_email))


def confirmation_send(subscriber: Subscriber, newsletter) -> str:
    """Send the confirmation email for `newsletter`, or a reminder when they already get it. Returns which.

    Nothing is sent to a suppressed or unsubscribed-since subscriber (the signup may be minutes old)."""
    with translation.override(subscriber.language or settings.LANGUAGE_CODE):
        if subscriber.status in (Subscriber.Status.SUPPRESSED, Subscriber.Status.UNSUBSCRIBED):
            return "none"
        subscribed = Subscription.objects.filter(
            subscriber=subscriber, newsletter=newsletter, status=Subscription.Status.ACTIVE
        ).exists()
        context = {"newsletter": newsletter, "preferences_url": links.preferences_url(subscriber.token)}
        if subscriber.status == Subscriber.Status.ACTIVE and subscribed:
            subject = _("You are already subscribed to %(name)s") % {"name": newsletter.name}
            _send(subscriber, subject, "already_subscribed", context, _newsletter_from(newsletter))
            return "reminder"
        context["confirm_url"] = links.confirm_url(subscriber.token, newsletter.slug)
        subject = _("Please confirm your subscription to %(name)s") % {"name": newsletter.name}
        _send(subscriber, subject, "confirm", context, _newsletter_from(newsletter))
        return "confirm"


def export_link_send(subscriber: Subscriber) -> None:
    """Email the person a signed link, valid for a short while, to download their data."""
    with translation.override(subscriber.language or settings.LANGUAGE_CODE):
        hours = int(MAX_AGE[Purpose.EXPORT].total_seconds() // 3600)
        context = {"export_url": links.export_url(subscriber.token), "hours": hours}
        _send(subscriber, _("Your data, as you asked"), "export", context)


def erase_link_send(subscriber: Subscriber) -> None:
    """Email the person the signed, expiring link whose page erases them: erasure is confirmed from the mailbox,
    so a preferences link that leaked can't erase anyone."""
    with translation.override(subscriber.language or settings.LANGUAGE_CODE):
        hours = int(MAX_AGE[Purpose.ERASE].total_seconds() // 3600)
        context = {"erase_url": links.erase_url(subscriber.token), "hours": hours}
        _send(subscriber, _("Confirm that we should erase your data"), "erase", context)
