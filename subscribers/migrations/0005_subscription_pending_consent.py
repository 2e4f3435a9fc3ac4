"""Consent is per newsletter: subscriptions gain a pending state, and existing active rows without the owner's
consent to that newsletter on record become pending, so nobody is mailed a newsletter they never confirmed.

The rule (README, "Readers and consent"): an active subscription stays active when the ledger holds, for that
subscriber and that newsletter, a confirmation (the owner pressed Confirm on a link naming it), an import (an
operator attested consent), or a preferences change that added it (the page is reached only from the owner's
mailbox). Everything else, notably the subscription a stranger created by typing someone's address into a form
that its owner then never confirmed, becomes pending: the owner's next confirmation of that newsletter
activates it. Reversing leaves pending rows pending (the old code never mails a row that is not active).
"""

from django.db import migrations, models
from django.db.models import Exists, OuterRef

CHUNK = 2000


def _added_slugs(detail: str) -> set[str]:
    # subscriber_preferences_update writes "added daily-brief; added weekend; removed x; changed name".
    return {part.strip()[len("added ") :] for part in detail.split(";") if part.strip().startswith("added ")}


def subscriptions_without_consent_to_pending(apps, schema_editor):
    Subscription = apps.get_model("subscribers", "Subscription")
    ConsentEvent = apps.get_model("subscribers", "ConsentEvent")
    consented = ConsentEvent.objects.filter(
        subscriber_id=OuterRef("subscriber_id"),
        newsletter_id=OuterRef("newsletter_id"),
        kind__in=["confirm", "import"],
    )
    candidates = (
        Subscription.objects.filter(status="active")
        .annotate(consented=Exists(consented))
        .filter(consented=False)
        .values_list("id", "subscriber_id", "newsletter__slug")
        .order_by("id")
    )
    last_id = 0
    while True:
        chunk = list(candidates.filter(id__gt=last_id)[:CHUNK])
        if not chunk:
            return
        last_id = chunk[-1][0]
        chosen: dict[int, set[str]] = {}
        events = ConsentEvent.objects.filter(
            subscriber_id__in={subscriber_id for _, subscriber_id, _ in chunk},
            kind="preferences",
            detail__contains="added ",
        ).values_list("subscriber_id", "detail")
        for subscriber_id, detail in events:
            chosen.setdefault(subscriber_id, set()).update(_added_slugs(detail))
        unconfirmed = [pk for pk, subscriber_id, slug in chunk if slug not in chosen.get(subscriber_id, ())]
        Subscription.objects.filter(id__in=unconfirmed).update(status="pending")


class Migration(migrations.Migration):
    dependencies = [
        ("subscribers", "0004_subscriber_language"),
    ]

    operations = [
        migrations.AlterField(
            model_name="subscription",
            name="status",
            field=models.CharField(
                choices=[("pending", "Awaiting confirmation"), ("active", "Subscribed"), ("unsubscribed", "Unsubscribed")],
                default="active",
                max_length=16,
            ),
        ),
        migrations.RunPython(subscriptions_without_consent_to_pending, migrations.RunPython.noop),
    ]
