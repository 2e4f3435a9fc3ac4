"""Consent is per newsletter (GDPR Art. 7): a subscription is pending until its owner confirms that newsletter.

The end-to-end test walks the issue's scenario over HTTP, real SMTP and a real send: a stranger types your
address into A's form, you ignore A's email, you sign up for B and confirm B; A's next issue must not reach you.
"""

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from newsletter.models import Issue, IssueArticle
from subscribers.models import ConsentEvent, Subscriber, Subscription
from subscribers.services.signup import subscriber_signup
from subscribers.services.unsubscribe import subscriber_unsubscribe
from subscribers.tasks import confirmation_send_task
from subscribers.tokens import Purpose, read_token
from tests.factories import NewsletterFactory, SubscriberFactory, SubscriptionFactory, issue_to_send, subscribed

pytestmark = pytest.mark.django_db

VICTIM = "victim@example.com"


def sign_up_through_the_form(client, newsletter, email: str, on_commit) -> Subscriber:
    data = {"email": email, "name": "", "consent": "on", "website": ""}
    with on_commit(execute=False):  # the email is sent below, by the task's body, into the test SMTP server
        response = client.post(reverse("subscribers:signup", args=[newsletter.slug]), data)
    assert response.status_code == 302
    subscriber = Subscriber.objects.get(email=email)
    assert confirmation_send_task(subscriber.pk, newsletter.pk) == "confirm"
    return subscriber


def confirm_link_in(received) -> str:
    text = received.message.get_body(("plain",)).get_content()
    return next(word for word in text.split() if "/confirm/" in word)


@pytest.mark.django_db(transaction=True)
def test_confirming_b_never_starts_a_that_a_stranger_asked_for(
    client, smtp_server, on_commit, path_of, start, drain, received_by_address
):
    issue_a = issue_to_send(NewsletterFactory(slug="politics", name="Politics"), subject="A: the council votes")
    issue_b = Issue.objects.create(
        newsletter=NewsletterFactory(slug="weekend", name="Weekend"), subject="B: the weekend", intro="Hello."
    )
    for link in issue_a.items.all():
        IssueArticle.objects.create(issue=issue_b, article=link.article, position=link.position)
    a, b = issue_a.newsletter, issue_b.newsletter

    sign_up_through_the_form(client, a, VICTIM, on_commit)  # a stranger, with your address
    sign_up_through_the_form(client, b, VICTIM, on_commit)  # you, later
    email_a, email_b = smtp_server.to(VICTIM)
    assert read_token(Purpose.CONFIRM, confirm_link_in(email_a).rstrip("/").rsplit("/", 1)[1]).newsletter == "politics"
    link_b = confirm_link_in(email_b)
    assert read_token(Purpose.CONFIRM, link_b.rstrip("/").rsplit("/", 1)[1]).newsletter == "weekend"
    # You ignore A's email and confirm B's.
    response = client.post(path_of(link_b))
    assert response.status_code == 200 and b"re subscribed</h1>" in response.content

    victim = Subscriber.objects.get(email=VICTIM)
    assert victim.status == Subscriber.Status.ACTIVE
    states = dict(victim.subscriptions.values_list("newsletter__slug", "status"))
    assert states == {"politics": Subscription.Status.PENDING, "weekend": Subscription.Status.ACTIVE}
    confirmations = ConsentEvent.objects.filter(subscriber=victim, kind=ConsentEvent.Kind.CONFIRM)
    assert list(confirmations.values_list("newsletter__slug", flat=True)) == ["weekend"]

    smtp_server.messages.clear()
    for issue in (issue_a, issue_b):
        start(issue)
        drain(issue)
    received = [m.message["Subject"] for m in smtp_server.to(VICTIM)]
    assert received == ["B: the weekend"]  # one issue: B's; nothing of A
    assert received_by_address(smtp_server) == {VICTIM: 1}


def test_an_active_reader_adding_a_newsletter_gets_a_link_that_adds_just_that_one(
    client, smtp_server, on_commit, path_of
):
    b = NewsletterFactory(slug="weekend", name="Weekend")
    a = NewsletterFactory(slug="politics", name="Politics")
    c = NewsletterFactory(slug="culture", name="Culture")
    reader = subscribed(b, email=VICTIM)
    SubscriptionFactory(subscriber=reader, newsletter=c, status=Subscription.Status.PENDING)  # never confirmed

    sign_up_through_the_form(client, a, VICTIM, on_commit)
    assert not reader.subscriptions.filter(newsletter=a).exists()  # an anonymous form changes nothing
    (email,) = smtp_server.to(VICTIM)
    client.post(path_of(confirm_link_in(email)))
    states = dict(reader.subscriptions.values_list("newsletter__slug", "status"))
    assert states == {"weekend": "active", "politics": "active", "culture": "pending"}


def test_a_pending_person_confirming_one_newsletter_leaves_their_other_signups_pending(
    client, newsletter, confirm_path
):
    other = NewsletterFactory(slug="weekend")
    for target in (newsletter, other):
        subscriber_signup(VICTIM, "", target, "t", "v1", "form")
    person = Subscriber.objects.get()
    assert set(person.subscriptions.values_list("status", flat=True)) == {Subscription.Status.PENDING}
    client.post(confirm_path(person, other))
    client.post(confirm_path(person, other))  # twice: nothing more
    states = dict(person.subscriptions.values_list("newsletter__slug", "status"))
    assert states == {newsletter.slug: "pending", "weekend": "active"}
    client.post(confirm_path(person, newsletter))  # their own choice, later, from A's email
    assert set(person.subscriptions.values_list("status", flat=True)) == {Subscription.Status.ACTIVE}
    assert ConsentEvent.objects.filter(kind=ConsentEvent.Kind.CONFIRM).count() == 2


def test_a_confirmation_link_naming_no_newsletter_confirms_nothing(client, newsletter, confirm_path):
    pending = SubscriberFactory(status=Subscriber.Status.PENDING, confirmed_at=None)
    SubscriptionFactory(subscriber=pending, newsletter=newsletter, status=Subscription.Status.PENDING)
    for method in ("get", "post"):
        assert getattr(client, method)(confirm_path(pending)).status_code == 410
    pending.refresh_from_db()
    assert pending.status == Subscriber.Status.PENDING
    assert pending.subscriptions.get().status == Subscription.Status.PENDING


def test_resigning_up_after_unsubscribing_is_pending_again(newsletter):
    reader = subscribed(newsletter, email=VICTIM)
    subscriber_unsubscribe(reader, newsletter)
    subscriber_signup(VICTIM, "", newsletter, "t", "v1", "form")
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.PENDING
    assert reader.subscriptions.get().status == Subscription.Status.PENDING


def test_unsubscribing_from_everything_ends_pending_subscriptions_too(client, newsletter, confirm_path):
    other = NewsletterFactory(slug="weekend")
    reader = subscribed(newsletter)
    SubscriptionFactory(subscriber=reader, newsletter=other, status=Subscription.Status.PENDING)
    assert subscriber_unsubscribe(reader, newsletter)
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED
    assert set(reader.subscriptions.values_list("status", flat=True)) == {Subscription.Status.UNSUBSCRIBED}
    client.post(confirm_path(reader, other))  # an old link can't undo the opt-out
    assert reader.subscriptions.get(newsletter=other).status == Subscription.Status.UNSUBSCRIBED


# --- The data migration ----------------------------------------------------------------------------------------

BEFORE, AFTER = ("subscribers", "0004_subscriber_language"), ("subscribers", "0005_subscription_pending_consent")


@pytest.mark.django_db(transaction=True)
def test_migration_leaves_active_only_what_its_owner_confirmed_or_an_operator_imported():
    executor = MigrationExecutor(connection)
    # Every other app stays at its latest migration that does not need a later subscribers migration: only this
    # app is taken back and forward again.
    others = [_latest_not_needing(executor.loader.graph, node) for node in executor.loader.graph.leaf_nodes()
              if node[0] != "subscribers"]  # fmt: skip
    try:
        executor.migrate([BEFORE, *others])
        applied = [node for node in others if node[1] is not None]
        old = MigrationExecutor(connection).loader.project_state([BEFORE, *applied]).apps
        _seed_before_and_check_after(old)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def _latest_not_needing(graph, node):
    """`node`, or its latest ancestor in the same app, whose plan needs no subscribers migration after BEFORE."""
    allowed = set(graph.forwards_plan(BEFORE))
    while any(n[0] == "subscribers" and n not in allowed for n in graph.forwards_plan(node)):
        parent = next((p.key for p in graph.node_map[node].parents if p.key[0] == node[0]), None)
        if parent is None:
            return (node[0], None)  # the app's first migration already needs it: the app is unapplied meanwhile
        node = parent
    return node


def _seed_before_and_check_after(old) -> None:
    Newsletter = old.get_model("newsletter", "Newsletter")
    Subscriber_ = old.get_model("subscribers", "Subscriber")
    Subscription_ = old.get_model("subscribers", "Subscription")
    Event = old.get_model("subscribers", "ConsentEvent")
    a, b, c = (Newsletter.objects.create(name=s, slug=s, from_name="N", from_email="n@example.org") for s in "abc")

    def person(email, status, *newsletters):
        subscriber = Subscriber_.objects.create(email=email, status=status, token=uuid.uuid4())
        for newsletter in newsletters:
            Subscription_.objects.create(subscriber=subscriber, newsletter=newsletter, status="active")
        return subscriber

    # The issue's victim: A from a stranger's form (a subscribe event only), B confirmed.
    victim = person("victim@example.com", "active", a, b)
    Event.objects.create(subscriber=victim, newsletter=a, kind="subscribe", source="form")
    Event.objects.create(subscriber=victim, newsletter=b, kind="subscribe", source="form")
    Event.objects.create(subscriber=victim, newsletter=b, kind="confirm", source="link")
    imported = person("imported@example.com", "active", a)
    Event.objects.create(subscriber=imported, newsletter=a, kind="import", source="import")
    chooser = person("chooser@example.com", "active", a, c)  # confirmed A, then added C on the preferences page
    Event.objects.create(subscriber=chooser, newsletter=a, kind="confirm", source="link")
    Event.objects.create(subscriber=chooser, kind="preferences", source="link", detail="added c; changed name")
    person("never@example.com", "pending", a)  # signed up, never confirmed anything
    left = person("left@example.com", "active", b)
    Subscription_.objects.filter(subscriber=left).update(status="unsubscribed")

    executor = MigrationExecutor(connection)
    executor.migrate([AFTER])
    new = executor.loader.project_state([AFTER]).apps.get_model("subscribers", "Subscription")
    rows = new.objects.select_related("subscriber", "newsletter")
    states = {(s.subscriber.email, s.newsletter.slug): s.status for s in rows}
    assert states == {
        ("victim@example.com", "a"): "pending",
        ("victim@example.com", "b"): "active",
        ("imported@example.com", "a"): "active",
        ("chooser@example.com", "a"): "active",
        ("chooser@example.com", "c"): "active",
        ("never@example.com", "a"): "pending",
        ("left@example.com", "b"): "unsubscribed",
    }
