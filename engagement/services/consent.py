"""Per-reader measurement consent: granted from the signup form (with the signup's confirmation) or the
preferences page, recorded in the consent ledger with its wording and policy version, withdrawn from the
preferences page, which also deletes the reader's recorded events of that newsletter at once."""

from __future__ import annotations

from django.db import transaction
from django.db.models import BooleanField, Exists, OuterRef, Value
from django.db.models.expressions import Expression
from django.utils.translation import gettext_lazy as _

from engagement.models import Event, ReaderConsent
from newsletter.conf import app_settings
from newsletter.models import Issue, Newsletter, TrackingMode
from subscribers.models import ConsentEvent, Subscriber
from subscribers.services.ledger import NO_REQUEST, consent_record

TRACKING_WORDING = _(
    "Also measure which stories I open and click in {newsletter}, linked to me, to improve it. "
    "Optional; you can turn it off at any time on your preferences page."
)
GRANTED = "per-reader engagement measurement: granted"
WITHDRAWN = "per-reader engagement measurement: withdrawn"


def tracking_wording(newsletter: Newsletter) -> str:
    return str(TRACKING_WORDING).format(newsletter=newsletter.name)


def reader_measured(issue: Issue) -> Expression:
    """Per claimed delivery: whether its links carry the delivery id (per-reader mode and the reader agreed)."""
    if issue.tracking_mode != TrackingMode.PER_READER:
        return Value(False, output_field=BooleanField())
    return Exists(
        ReaderConsent.objects.filter(subscriber_id=OuterRef("subscriber_id"), newsletter_id=issue.newsletter_id)
    )


def reader_tracking_consents(subscriber: Subscriber) -> set[int]:
    """The newsletters the reader agreed to be measured for."""
    return set(ReaderConsent.objects.filter(subscriber=subscriber).values_list("newsletter_id", flat=True))


@transaction.atomic
def reader_tracking_grant(
    subscriber: Subscriber, newsletter: Newsletter, source: str, *, meta=None, policy_version: str = ""
) -> bool:
    """Record the reader's agreement (ledger row with the wording shown and the policy version). Returns whether
    it changed anything (agreeing twice records once)."""
    _row, created = ReaderConsent.objects.get_or_create(
        subscriber=subscriber,
        newsletter=newsletter,
        defaults={"policy_version": policy_version or app_settings.POLICY_VERSION},
    )
    if created:
        _ledger(subscriber, newsletter, source, GRANTED, meta, tracking_wording(newsletter), policy_version)
    return created


@transaction.atomic
def reader_tracking_withdraw(subscriber: Subscriber, newsletter: Newsletter, source: str, *, meta=None) -> int:
    """Withdraw the agreement and delete every recorded event of the reader for that newsletter's issues (the
    anonymous counts stay). Returns how many events were deleted; safe to call twice."""
    deleted, _ = ReaderConsent.objects.filter(subscriber=subscriber, newsletter=newsletter).delete()
    events, _ = Event.objects.filter(subscriber=subscriber, issue__newsletter=newsletter).delete()
    if deleted:
        _ledger(subscriber, newsletter, source, WITHDRAWN, meta, "", "")
    return events


def reader_events_erase(subscriber_id: int) -> int:
    """Erasure: every recorded event of the person, at once (before the person's row goes)."""
    ReaderConsent.objects.filter(subscriber_id=subscriber_id).delete()
    deleted, _ = Event.objects.filter(subscriber_id=subscriber_id).delete()
    return deleted


def _ledger(subscriber, newsletter, source, detail, meta, text, version) -> None:
    consent_record(
        subscriber,
        ConsentEvent.Kind.PREFERENCES,
        source,
        newsletter=newsletter,
        meta=meta or NO_REQUEST,
        consent_text=text,
        policy_version=(version or app_settings.POLICY_VERSION) if text else "",
        detail=detail,
    )


def reader_tracking_choices(subscriber: Subscriber) -> list[tuple[Newsletter, bool]]:
    """For the preferences page: each newsletter measured per reader that the reader receives or agreed for,
    and whether they agreed."""
    agreed = reader_tracking_consents(subscriber)
    received = set(subscriber.subscriptions.filter(status="active").values_list("newsletter_id", flat=True))
    newsletters = Newsletter.objects.filter(tracking_mode=TrackingMode.PER_READER, pk__in=agreed | received)
    return [(newsletter, newsletter.pk in agreed) for newsletter in newsletters]


def reader_tracking_set(subscriber: Subscriber, agreed_ids: set[int], source: str, *, meta=None) -> int:
    """The preferences page's choice: agree for exactly these of `reader_tracking_choices`, withdraw (and delete
    the events) for the others. Returns how many choices changed."""
    changed = 0
    for newsletter, agreed in reader_tracking_choices(subscriber):
        wanted = newsletter.pk in agreed_ids
        if wanted and not agreed:
            changed += reader_tracking_grant(subscriber, newsletter, source, meta=meta)
        elif agreed and not wanted:
            reader_tracking_withdraw(subscriber, newsletter, source, meta=meta)
            changed += 1
    return changed
