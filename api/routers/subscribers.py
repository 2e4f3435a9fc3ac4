"""Subscribers: sign up (double opt-in: the person confirms from their mailbox; nobody is activated by the API),
read by email, list with filters and cursor pagination, unsubscribe, export, erase. The subscriber permissions
apply, as in the admin: view, add (sign up), suppress (unsubscribe), export, erase."""

from datetime import datetime
from typing import Any, Literal

from django.conf import settings
from django.db import transaction
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status
from pydantic import Field, IPvAnyAddress

from api.auth import require
from api.errors import field_problem
from api.idempotency import IdempotencyKeyHeader, idempotent
from api.schemas import Email, Id, Limit, Slug, Text, cursor_dump, cursor_load
from newsletter.conf import app_settings
from newsletter.models import Newsletter
from subscribers.models import ConsentEvent, Subscriber, Subscription, time_zone_clean
from subscribers.services.addresses import InvalidAddress, address_normalise, subscribers_by_address
from subscribers.services.ledger import RequestMeta
from subscribers.services.privacy import subscriber_erase, subscriber_export
from subscribers.services.signup import subscriber_signup
from subscribers.services.tags import TagError, subscribers_tag, subscribers_untag
from subscribers.services.unsubscribe import subscriber_unsubscribe

router = Router(tags=["subscribers"])

Language = Literal[("",) + tuple(code for code, _name in settings.LANGUAGES)]


class SignupIn(Schema):
    email: Email
    name: Text(200) = ""
    newsletter: Slug
    consent_text: Text(2000, min_length=1) = Field(description="The consent wording the person agreed to.")
    policy_version: Text(32) = Field(default="", description="Defaults to the POLICY_VERSION in force.")
    language: Language = ""
    time_zone: Text(64) = Field(default="", description="The reader's IANA time zone, e.g. Europe/Madrid.")
    ip: IPvAnyAddress | None = Field(default=None, description="The person's IP, as your signup form saw it.")
    user_agent: Text(300) = ""


class SubscriberOut(Schema):
    id: int
    email: str
    name: str
    status: str
    source: str
    language: str
    time_zone: str
    created_at: datetime
    confirmed_at: datetime | None
    newsletters: list[str]
    tags: list[str]

    @staticmethod
    def resolve_newsletters(obj) -> list[str]:
        return sorted(s.newsletter.slug for s in obj.subscriptions.all() if s.status == Subscription.Status.ACTIVE)

    @staticmethod
    def resolve_tags(obj) -> list[str]:
        return sorted((link.tag.name for link in obj.tag_links.all()), key=str.lower)


class SignupOut(Schema):
    outcome: str = Field(description="confirmation_sent, reminder_sent, throttled or refused (suppressed).")
    subscriber: SubscriberOut | None


class SubscriberPage(Schema):
    items: list[SubscriberOut]
    next_cursor: str | None


class SubscriberFilters(Schema):
    status: Subscriber.Status | None = None
    newsletter: Slug | None = None
    created_after: datetime | None = None
    cursor: Text(500) | None = None
    limit: Limit = 50


class EmailQuery(Schema):
    email: Email


class UnsubscribeIn(Schema):
    newsletter: Slug | None = Field(default=None, description="Only this newsletter; all of them when absent.")


class UnsubscribeOut(Schema):
    changed: bool
    subscriber: SubscriberOut


TagName = Text(64, min_length=1)


class TagsIn(Schema):
    tags: list[TagName] = Field(min_length=1, max_length=100, description="Tag names; new ones are created.")


class TagQuery(Schema):
    tag: TagName


class TagsOut(Schema):
    tags: list[str] = Field(description="The subscriber's tags after the change, by name.")
    changed: int = Field(description="How many tags were added or removed by this call (0 on a repeat).")


class EraseOut(Schema):
    erased: bool
    email_hash: str


def _subscribers():
    return Subscriber.objects.prefetch_related("subscriptions__newsletter", "tag_links__tag")


def _newsletter(slug: str) -> Newsletter:
    newsletter = Newsletter.objects.filter(slug=slug).first()
    if newsletter is None:
        raise field_problem("newsletter", f"no newsletter has the slug {slug!r}")
    return newsletter


@router.post("/", response={202: SignupOut}, summary="Sign someone up (sends the double opt-in email)")
@idempotent(SignupOut)
def subscribers_create(request, payload: SignupIn, idempotency_key: IdempotencyKeyHeader = None):
    require(request, "subscribers.add_subscriber")
    newsletter = _newsletter(payload.newsletter)
    try:
        email = address_normalise(payload.email)
    except InvalidAddress as exc:
        raise field_problem("email", str(exc)) from exc
    if payload.time_zone and not time_zone_clean(payload.time_zone):
        raise field_problem("time_zone", "is not an IANA time zone name like Europe/Madrid")
    outcome = subscriber_signup(
        email,
        payload.name,
        newsletter,
        consent_text=payload.consent_text,
        policy_version=payload.policy_version or app_settings.POLICY_VERSION,
        source=ConsentEvent.Source.API,
        ip=str(payload.ip or ""),
        user_agent=payload.user_agent,
        language=payload.language,
        time_zone=payload.time_zone,
    )
    subscriber = subscribers_by_address(_subscribers(), email).first()
    return Status(202, {"outcome": str(outcome), "subscriber": subscriber})


@router.get("/", response=SubscriberPage, summary="List subscribers (filters, cursor pagination)")
def subscribers_list(request, filters: Query[SubscriberFilters]):
    require(request, "subscribers.view_subscriber")
    rows = _subscribers().filter(pk__gt=cursor_load(filters.cursor)).order_by("pk")
    if filters.status:
        rows = rows.filter(status=filters.status)
    if filters.newsletter:
        rows = rows.filter(
            subscriptions__newsletter__slug=filters.newsletter, subscriptions__status=Subscription.Status.ACTIVE
        )
    if filters.created_after:
        rows = rows.filter(created_at__gt=filters.created_after)
    items = list(rows[: filters.limit + 1])
    more = len(items) > filters.limit
    items = items[: filters.limit]
    return {"items": items, "next_cursor": cursor_dump(items[-1].pk) if more else None}


@router.get("/lookup", response=SubscriberOut, summary="Read a subscriber by email address")
def subscribers_lookup(request, query: Query[EmailQuery]):
    require(request, "subscribers.view_subscriber")
    return get_object_or_404(subscribers_by_address(_subscribers(), query.email))


@router.get("/{subscriber_id}", response=SubscriberOut, summary="Read a subscriber")
def subscribers_read(request, subscriber_id: Id):
    require(request, "subscribers.view_subscriber")
    return get_object_or_404(_subscribers(), pk=subscriber_id)


@router.post("/{subscriber_id}/unsubscribe", response=UnsubscribeOut, summary="Unsubscribe (one or all)")
def subscribers_unsubscribe(request, subscriber_id: Id, payload: UnsubscribeIn):
    require(request, "subscribers.suppress_subscriber")
    subscriber = get_object_or_404(Subscriber, pk=subscriber_id)
    newsletter = _newsletter(payload.newsletter) if payload.newsletter else None
    changed = subscriber_unsubscribe(
        subscriber, newsletter, source=ConsentEvent.Source.API, meta=RequestMeta.from_request(request)
    )
    return {"changed": changed, "subscriber": _subscribers().get(pk=subscriber.pk)}


def _tags(subscriber_id: int, changed: int) -> dict:
    return {"tags": SubscriberOut.resolve_tags(_subscribers().get(pk=subscriber_id)), "changed": changed}


@router.get("/{subscriber_id}/tags", response=TagsOut, summary="A subscriber's tags")
def subscribers_tags(request, subscriber_id: Id):
    require(request, "subscribers.view_subscriber")
    subscriber = get_object_or_404(Subscriber, pk=subscriber_id)
    return _tags(subscriber.pk, 0)


@router.post("/{subscriber_id}/tags", response=TagsOut, summary="Tag a subscriber (safe to repeat)")
def subscribers_tags_add(request, subscriber_id: Id, payload: TagsIn):
    require(request, "subscribers.change_subscriber")
    subscriber = get_object_or_404(Subscriber, pk=subscriber_id)
    changed = 0
    with transaction.atomic():
        for name in payload.tags:
            try:
                changed += subscribers_tag([subscriber.pk], name)
            except TagError as exc:
                raise field_problem("tags", str(exc)) from exc
    return _tags(subscriber.pk, changed)


@router.delete("/{subscriber_id}/tags", response=TagsOut, summary="Remove a tag from a subscriber")
def subscribers_tags_remove(request, subscriber_id: Id, query: Query[TagQuery]):
    require(request, "subscribers.change_subscriber")
    subscriber = get_object_or_404(Subscriber, pk=subscriber_id)
    return _tags(subscriber.pk, subscribers_untag([subscriber.pk], query.tag))


@router.get("/{subscriber_id}/export", response=dict[str, Any], summary="Everything held about a subscriber")
def subscribers_export(request, subscriber_id: Id):
    require(request, "subscribers.export_subscriber")
    return subscriber_export(get_object_or_404(Subscriber, pk=subscriber_id))


@router.delete("/{subscriber_id}", response=EraseOut, summary="Erase a subscriber (right to be forgotten)")
def subscribers_erase(request, subscriber_id: Id):
    require(request, "subscribers.erase_subscriber")
    subscriber = get_object_or_404(Subscriber, pk=subscriber_id)
    digest = subscriber_erase(subscriber, source=ConsentEvent.Source.API, detail=f"API, by {request.auth}")
    return {"erased": True, "email_hash": digest}
