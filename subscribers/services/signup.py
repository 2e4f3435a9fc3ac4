"""Signup: record consent, create or refresh the pending subscriber, and send (at most once per interval) the
double opt-in email. Whatever happens, the caller shows the same page: the response never tells whether an
address is known (no enumeration), and the address's owner is the only one who hears about it, by email.

Erased people: erasure leaves a keyed hash with reason "erased" on the suppression list, which keeps imports and
operators from re-adding them, but the person may sign up again themselves. Their signup proceeds like a new one;
the "erased" entry is removed only when they confirm from their mailbox (confirmation.subscriber_confirm), so a
third party typing the address in cannot lift it. Every other suppression reason (bounce, complaint, operator)
refuses the signup silently.
"""

from datetime import timedelta
from enum import StrEnum

from django.db import IntegrityError, transaction
from django.utils import timezone

from api.webhooks.outbox import events_record, subscriber_payload
from engagement.services.consent import reader_tracking_grant
from newsletter.conf import app_settings
from subscribers import dispatch
from subscribers.models import ConsentEvent, Subscriber, Subscription, Suppression, time_zone_clean

from .addresses import address_normalise, name_clean, subscribers_by_address
from .ledger import RequestMeta, consent_record
from .suppression import suppression_find


class SignupOutcome(StrEnum):
    CONFIRMATION_SENT = "confirmation_sent"  # an email asking to confirm is on its way
    REMINDER_SENT = "reminder_sent"  # already subscribed: an email saying so (with the preferences link)
    THROTTLED = "throttled"  # an email went out less than CONFIRMATION_RESEND_INTERVAL_MINUTES ago
    REFUSED = "refused"  # suppressed (bounce, complaint, operator): nothing is sent


def resend_interval() -> timedelta:
    return timedelta(minutes=app_settings.CONFIRMATION_RESEND_INTERVAL_MINUTES)


def _lock_or_create(email: str, name: str, source: str, language: str) -> tuple[Subscriber, bool]:
    existing = subscribers_by_address(Subscriber.objects.select_for_update(), email).first()
    if existing:
        return existing, False
    try:
        with transaction.atomic():  # savepoint: a concurrent signup for the same address may win the index
            return Subscriber.objects.create(email=email, name=name, source=source, language=language[:16]), True
    except IntegrityError:
        return subscribers_by_address(Subscriber.objects.select_for_update(), email).get(), False


def _claim_email_slot(subscriber: Subscriber) -> bool:
    """Take the right to send one email now; False while the previous one is younger than the resend interval.
    The caller holds the subscriber's row lock, so two concurrent signups cannot both win."""
    now = timezone.now()
    if subscriber.confirmation_sent_at and subscriber.confirmation_sent_at > now - resend_interval():
        return False
    subscriber.confirmation_sent_at = now
    return True


def subscriber_signup_later(
    email: str,
    name: str,
    newsletter,
    consent_text: str,
    policy_version: str,
    source: str,
    ip: str = "",
    user_agent: str = "",
    language: str = "",
    measure: bool = False,
    time_zone: str = "",
) -> None:
    """The public form's signup: one task, whatever the address is. Known, unknown, pending and suppressed
    addresses cost the request the same (one enqueue, no lookup), so its timing tells nothing; the task runs
    subscriber_signup, which decides what (if anything) to email."""
    dispatch.signup_later(
        {
            "email": email,
            "name": name,
            "newsletter_id": newsletter.pk,
            "consent_text": consent_text,
            "policy_version": policy_version,
            "source": source,
            "ip": ip,
            "user_agent": user_agent,
            "language": language,
            "measure": measure,
            "time_zone": time_zone,
        }
    )


@transaction.atomic
def subscriber_signup(
    email: str,
    name: str,
    newsletter,
    consent_text: str,
    policy_version: str,
    source: str,
    ip: str = "",
    user_agent: str = "",
    language: str = "",
    measure: bool = False,
    time_zone: str = "",
) -> SignupOutcome:
    """Sign `email` up to `newsletter` with the consent wording and policy version the person agreed to.

    New, pending and unsubscribed people become pending with a pending subscription to `newsletter`: nothing is
    mailed until they confirm that newsletter, and confirming another one never activates it. An active subscriber
    is never changed by an anonymous form: asking for another newsletter sends a confirmation link that adds just
    that one, asking for one they already get sends a short reminder. Emails go out after commit through Celery, at most
    one per address per CONFIRMATION_RESEND_INTERVAL_MINUTES, written in `language` (the signup page's; kept on the
    subscriber, except an active one's, which the form can't change). `measure`: the separate choice to be
    measured per reader, recorded for a signup that still needs its confirmation (it counts once confirmed: only
    confirmed readers are mailed); an active reader decides it on their preferences page, never through an
    anonymous form. Raises InvalidAddress for a malformed address
    (forms validate first, so a view never sees it).
    """

    email = address_normalise(email)
    name = name_clean(name)
    suppression = suppression_find(email)
    if suppression and suppression.reason != Suppression.Reason.ERASED:
        return SignupOutcome.REFUSED

    subscriber, created = _lock_or_create(email, name, source, language)
    if subscriber.status == Subscriber.Status.SUPPRESSED:
        return SignupOutcome.REFUSED

    subscription = Subscription.objects.filter(subscriber=subscriber, newsletter=newsletter).first()
    already_subscribed = subscription is not None and subscription.status == Subscription.Status.ACTIVE
    if subscriber.status == Subscriber.Status.ACTIVE:
        # Only the mailbox owner may change an active subscription: the confirmation link adds the newsletter.
        changed = not already_subscribed
        outcome = SignupOutcome.REMINDER_SENT if already_subscribed else SignupOutcome.CONFIRMATION_SENT
    else:
        changed = (
            created
            or subscription is None
            or subscription.status == Subscription.Status.UNSUBSCRIBED
            or subscriber.status == Subscriber.Status.UNSUBSCRIBED
        )
        if not created and name:
            subscriber.name = name
        if language:
            subscriber.language = language[:16]
        if time_zone := time_zone_clean(time_zone):
            subscriber.time_zone = time_zone
        subscriber.status = Subscriber.Status.PENDING
        # Pending until the owner confirms this newsletter (confirmation.subscriber_confirm): consent is specific,
        # so confirming another newsletter later never activates this one.
        if subscription is None:
            Subscription.objects.create(
                subscriber=subscriber, newsletter=newsletter, status=Subscription.Status.PENDING
            )
        elif subscription.status == Subscription.Status.UNSUBSCRIBED:
            subscription.status = Subscription.Status.PENDING
            subscription.save(update_fields=["status", "updated_at"])
        outcome = SignupOutcome.CONFIRMATION_SENT
        if measure:
            reader_tracking_grant(
                subscriber, newsletter, source, meta=RequestMeta(ip, user_agent), policy_version=policy_version
            )

    if changed:
        consent_record(
            subscriber,
            ConsentEvent.Kind.SUBSCRIBE,
            source,
            newsletter=newsletter,
            meta=RequestMeta(ip, user_agent),
            consent_text=consent_text,
            policy_version=policy_version,
        )
    if not _claim_email_slot(subscriber):
        outcome = SignupOutcome.THROTTLED
    subscriber.save()
    if created:
        events_record(
            "subscriber.created",
            subscriber_payload(subscriber, newsletter=newsletter.slug),
            subscriber_id=subscriber.pk,
        )
    if outcome != SignupOutcome.THROTTLED:
        dispatch.confirmation_send_later(subscriber.pk, newsletter.pk)
    return outcome
