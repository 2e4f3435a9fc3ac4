"""The one set of factory_boy factories for every test: newsletters, articles, issues, readers, deliveries.

Defaults describe a plausible newsroom; a test states what matters to it (`IssueFactory(sending=True)`,
`NewsletterFactory(slug="weekend")`). `issue_to_send` and `subscribers_bulk` build the delivery tests' issue and
thousands of readers quickly (bulk inserts through the same models).
"""

from __future__ import annotations

import io

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image as PILImage
from PIL import ImageDraw

from newsletter.demo_content import BODY_PARAGRAPH, COMMENTARY_PARAGRAPH
from newsletter.models import Article, Delivery, Issue, IssueArticle, Newsletter
from subscribers.models import Subscriber, Subscription


class NewsletterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Newsletter
        django_get_or_create = ("slug",)

    name = "The Harbour City Daily Brief"
    slug = factory.Sequence(lambda n: f"brief-{n}")
    description = "The stories that matter in Harbour City."
    from_name = "Harbour City Daily Brief"
    from_email = "brief@harbourcity.example"
    postal_address = "Harbour City Chronicle, 12 Quay Street, Harbour City HC1 4AB"


class ArticleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Article

    headline = factory.Sequence(lambda n: f"Headline number {n} about the harbour")
    slug = factory.Sequence(lambda n: f"story-{n}")
    dek = "A summary sentence that tells the reader why the story matters."
    byline = "Amara Okafor"
    section = "City Hall"
    canonical_url = factory.Sequence(lambda n: f"https://harbourcity.example/news/story-{n}")
    image_url = factory.Sequence(lambda n: f"https://harbourcity.example/media/story-{n}.jpg")
    image_alt = "Passengers boarding a white ferry at the Quay Street terminal"
    key_facts = factory.Sequence(
        lambda n: [f"Fact {n}.{i}: a short sentence with one number, {i * 7}." for i in (1, 2, 3)]
    )
    body_html = factory.LazyFunction(lambda: "".join(f"<p>{BODY_PARAGRAPH}</p>" for _ in range(4)))
    commentary_html = factory.LazyFunction(lambda: "".join(f"<p>{COMMENTARY_PARAGRAPH}</p>" for _ in range(5)))
    bottom_line = factory.Sequence(lambda n: f"Bottom line {n}: the ferries are coming, and the rest must follow.")


class IssueFactory(factory.django.DjangoModelFactory):
    """A draft; `sending=True` gives an issue whose send has started (frozen render, status sending)."""

    class Meta:
        model = Issue

    class Params:
        sending = factory.Trait(
            status=Issue.Status.SENDING,
            frozen_subject=factory.SelfAttribute("subject"),
            frozen_html="<p>hello</p>",
            frozen_text="hello",
            frozen_at=factory.LazyFunction(timezone.now),
            started_at=factory.LazyFunction(timezone.now),
        )

    newsletter = factory.SubFactory(NewsletterFactory)
    subject = factory.Sequence(lambda n: f"Issue {n}: ferries, hospitals and the festival")
    preheader = "Your Harbour City briefing in five minutes."
    intro = "Good morning. Here is what happened."


class SubscriberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscriber

    email = factory.Sequence(lambda n: f"reader{n}@example.com")
    name = factory.Sequence(lambda n: f"Reader {n}")
    status = Subscriber.Status.ACTIVE
    source = "form"
    confirmed_at = factory.LazyFunction(timezone.now)


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    subscriber = factory.SubFactory(SubscriberFactory)
    newsletter = factory.SubFactory(NewsletterFactory)


class DeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Delivery

    issue = factory.SubFactory(IssueFactory, sending=True)
    subscriber = factory.SubFactory(SubscriberFactory)
    status = Delivery.Status.PENDING


def subscribed(newsletter: Newsletter, **kwargs) -> Subscriber:
    """An active subscriber with an active subscription to `newsletter`."""
    subscriber = SubscriberFactory(**kwargs)
    SubscriptionFactory(subscriber=subscriber, newsletter=newsletter)
    return subscriber


def issue_with_articles(count: int, **issue_fields) -> Issue:
    issue = IssueFactory(**issue_fields)
    for position in range(count):
        IssueArticle.objects.create(issue=issue, article=ArticleFactory(), position=position)
    return issue


def issue_to_send(newsletter: Newsletter | None = None, subject: str = "Tuesday: the council votes") -> Issue:
    """The delivery tests' issue: a draft of the Daily Brief with two short stories, ready to render and send."""
    newsletter = newsletter or NewsletterFactory(
        name="Daily Brief",
        slug="daily-brief",
        description="",
        from_name="The Daily Brief",
        from_email="brief@news.example.org",
        reply_to="desk@news.example.org",
        postal_address="1 Press Row, Springfield",
    )
    issue = IssueFactory(
        newsletter=newsletter, subject=subject, preheader="", intro="Good morning. Three stories today."
    )
    for n in range(2):
        article = ArticleFactory(
            headline=f"Story {n}: council weighs budget",
            slug=f"story-{n}",
            dek="What changed and why it matters.",
            byline="",
            section="",
            canonical_url=f"https://news.example.org/story-{n}",
            image_url="",
            image_alt="",
            key_facts=["The vote is on Thursday.", "The budget grows 3 %."],
            body_html="<p>Long body.</p>",
            commentary_html="",
            bottom_line="Watch the vote.",
        )
        IssueArticle.objects.create(issue=issue, article=article, position=n)
    return issue


def subscribers_bulk(newsletter: Newsletter, count: int, start: int = 0, **fields) -> list[Subscriber]:
    """`count` active, subscribed readers reader{start}@example.com … (bulk inserts: thousands in well under a
    second), built with the factories' defaults."""
    now = timezone.now()
    subscribers = Subscriber.objects.bulk_create(
        [
            SubscriberFactory.build(
                email=f"reader{n}@example.com",
                name=fields.get("name", f"Reader {n}"),
                status=fields.get("status", Subscriber.Status.ACTIVE),
                confirmed_at=now,
            )
            for n in range(start, start + count)
        ],
        batch_size=2000,
    )
    if not subscribers or subscribers[0].pk is None:  # backends that don't return ids from bulk inserts
        subscribers = list(Subscriber.objects.filter(email__in=[s.email for s in subscribers]))
    Subscription.objects.bulk_create(
        [SubscriptionFactory.build(subscriber=s, newsletter=newsletter) for s in subscribers], batch_size=2000
    )
    return subscribers


def user_with_perms(username: str, *codenames: str, staff: bool = True):
    user = get_user_model().objects.create_user(username, f"{username}@example.com", "pw", is_staff=staff)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return get_user_model().objects.get(pk=user.pk)  # fresh instance: no stale permission cache


EDITOR_PERMS = (
    "add_issue", "change_issue", "view_issue", "delete_issue",
    "add_article", "change_article", "view_article",
    "add_issuearticle", "change_issuearticle", "view_issuearticle", "delete_issuearticle",
    "view_newsletter",
)  # fmt: skip


# --- pictures (made with Pillow) for the image tests -----------------------------------------------------------


def picture_bytes(width: int = 1600, height: int = 900, fmt: str = "JPEG", mode: str = "RGB", exif=None) -> bytes:
    """A picture with stripes and a dark disc, so that resizing has something to do."""
    rgba = mode == "RGBA"
    picture = PILImage.new(mode, (width, height), (30, 90, 160, 0) if rgba else (30, 90, 160))
    draw = ImageDraw.Draw(picture)
    for x in range(0, width, max(1, width // 40)):
        draw.line([(x, 0), (x, height)], fill=(200, 120 + x % 100, 40, 255) if rgba else (200, 120, 40))
    draw.ellipse([width // 3, height // 4, width // 3 + height // 2, height // 4 + height // 2], fill=(20, 20, 20, 255))
    buffer = io.BytesIO()
    picture.save(buffer, fmt, **({"exif": exif} if exif is not None else {}))
    return buffer.getvalue()


def picture_upload(name: str = "ferry.jpg", **kwargs) -> SimpleUploadedFile:
    """An uploaded file as the admin receives it, holding picture_bytes(**kwargs)."""
    content_type = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}.get(kwargs.get("fmt", "JPEG"))
    return SimpleUploadedFile(name, picture_bytes(**kwargs), content_type=content_type or "application/octet-stream")
