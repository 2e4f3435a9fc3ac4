"""factory_boy factories for the subscribers tests (kept here, in this lane, rather than tests/factories.py)."""

import factory
from django.utils import timezone

from newsletter.models import Delivery, Issue, Newsletter
from subscribers.models import Subscriber, Subscription


class NewsletterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Newsletter
        django_get_or_create = ["slug"]

    name = factory.Sequence(lambda n: f"Daily Brief {n}")
    slug = factory.Sequence(lambda n: f"daily-brief-{n}")
    from_name = "The Newsroom"
    from_email = "news@example.org"
    postal_address = "1 Press Row, Springfield"


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


class IssueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Issue

    newsletter = factory.SubFactory(NewsletterFactory)
    subject = factory.Sequence(lambda n: f"Issue {n}")
    status = Issue.Status.SENDING
    frozen_subject = factory.SelfAttribute("subject")
    frozen_html = "<p>hello</p>"
    frozen_text = "hello"
    frozen_at = factory.LazyFunction(timezone.now)
    started_at = factory.LazyFunction(timezone.now)


class DeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Delivery

    issue = factory.SubFactory(IssueFactory)
    subscriber = factory.SubFactory(SubscriberFactory)
    status = Delivery.Status.PENDING


def subscribed(newsletter, **kwargs) -> Subscriber:
    """An active subscriber with an active subscription to `newsletter`."""
    subscriber = SubscriberFactory(**kwargs)
    SubscriptionFactory(subscriber=subscriber, newsletter=newsletter)
    return subscriber
