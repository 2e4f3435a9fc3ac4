"""The suppression list: addresses that must never be mailed or re-imported, kept as keyed hashes."""

from django.db import transaction

from newsletter import delivery
from subscribers.models import ConsentEvent, Subscriber, Suppression, email_hash


def is_suppressed(email: str) -> bool:
    return Suppression.objects.filter(email_hash=email_hash(email)).exists()


@transaction.atomic
def address_suppress(email: str, reason: str, source: str = ConsentEvent.Source.ADMIN, detail: str = "") -> None:
    """Suppress an address (bounce, complaint, operator). Safe to call twice; the ledger records the first time.

    The subscriber, if any, stops receiving mail at once: every send claims only active subscribers, and their
    pending deliveries of issues in progress are skipped in this transaction.
    """
    suppression, created = Suppression.objects.get_or_create(email_hash=email_hash(email), defaults={"reason": reason})
    if not created and suppression.reason == Suppression.Reason.ERASED and reason != Suppression.Reason.ERASED:
        # An erased person who came back and then bounced or complained: the stronger reason wins.
        suppression.reason = reason
        suppression.save(update_fields=["reason"])
        created = True
    subscriber = Subscriber.objects.filter(email__iexact=email.strip()).first()
    if subscriber:
        delivery.subscriber_withdraw(subscriber.pk, reason="suppressed")
    if subscriber and subscriber.status != Subscriber.Status.SUPPRESSED:
        subscriber.status = Subscriber.Status.SUPPRESSED
        subscriber.save(update_fields=["status", "updated_at"])
    if created:
        ConsentEvent.objects.create(
            subscriber=subscriber, kind=ConsentEvent.Kind.SUPPRESS, source=source, detail=(detail or reason)[:300]
        )
