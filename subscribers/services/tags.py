"""Tags on subscribers: added by a CSV column, an admin action or the API; segments select by them."""

from collections.abc import Iterable

from django.db import transaction
from django.db.models.functions import Lower

from subscribers.models import SubscriberTag, Tag


class TagError(ValueError):
    """A tag name that cannot be used; the message says why."""


def tag_for(name: str) -> Tag:
    """The tag called `name` (case-insensitively), created if new."""
    clean = " ".join(name.split())
    if not clean:
        raise TagError("Give the tag a name.")
    if len(clean) > 64:
        raise TagError("A tag name has at most 64 characters.")
    existing = Tag.objects.alias(lower=Lower("name")).filter(lower=clean.lower()).first()
    if existing:
        return existing
    with transaction.atomic():
        Tag.objects.bulk_create([Tag(name=clean)], ignore_conflicts=True)  # a concurrent caller may win
    return Tag.objects.alias(lower=Lower("name")).get(lower=clean.lower())


def subscribers_tag(subscriber_ids: Iterable[int], name: str) -> int:
    """Add the tag to these subscribers. Returns how many did not have it yet. Safe to run twice."""
    tag = tag_for(name)
    ids = set(subscriber_ids)
    had = set(SubscriberTag.objects.filter(tag=tag, subscriber_id__in=ids).values_list("subscriber_id", flat=True))
    SubscriberTag.objects.bulk_create(
        [SubscriberTag(subscriber_id=i, tag=tag) for i in sorted(ids - had)], ignore_conflicts=True
    )
    return len(ids - had)


def subscribers_untag(subscriber_ids: Iterable[int], name: str) -> int:
    """Remove the tag from these subscribers. Returns how many had it."""
    tag = Tag.objects.alias(lower=Lower("name")).filter(lower=" ".join(name.split()).lower()).first()
    if tag is None:
        return 0
    deleted, _ = SubscriberTag.objects.filter(tag=tag, subscriber_id__in=list(subscriber_ids)).delete()
    return deleted
