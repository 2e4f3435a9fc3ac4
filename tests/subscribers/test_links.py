"""Pages behind email links: confirm, unsubscribe, RFC 8058 one-click, preferences; bad tokens; rate limits."""

import urllib.error
import urllib.request

import pytest
from django.test import Client

from newsletter.models import Delivery, Issue
from subscribers.models import ConsentEvent, Subscriber, Subscription
from subscribers.tokens import Purpose, make_token
from tests.factories import (
    DeliveryFactory,
    IssueFactory,
    NewsletterFactory,
    SubscriberFactory,
    SubscriptionFactory,
    subscribed,
)

pytestmark = pytest.mark.django_db


def kinds(subscriber) -> list[str]:
    return list(ConsentEvent.objects.filter(subscriber=subscriber).order_by("id").values_list("kind", flat=True))


# --- Confirm ---------------------------------------------------------------------------------------------------


def test_confirm_get_shows_a_button_and_changes_nothing(client, newsletter, confirm_path):
    pending = SubscriberFactory(status=Subscriber.Status.PENDING, confirmed_at=None)
    response = client.get(confirm_path(pending, newsletter))
    assert response.status_code == 200
    assert b'<button type="submit">Confirm</button>' in response.content
    pending.refresh_from_db()
    assert pending.status == Subscriber.Status.PENDING and not kinds(pending)


def test_confirm_post_activates_once(client, newsletter, confirm_path):
    pending = SubscriberFactory(status=Subscriber.Status.PENDING, confirmed_at=None)
    SubscriptionFactory(subscriber=pending, newsletter=newsletter)
    path = confirm_path(pending, newsletter)
    response = client.post(path, REMOTE_ADDR="198.51.100.9", HTTP_USER_AGENT="UA")
    assert response.status_code == 200 and b"re subscribed</h1>" in response.content
    pending.refresh_from_db()
    assert pending.status == Subscriber.Status.ACTIVE and pending.confirmed_at
    assert client.post(path).status_code == 200  # pressing twice is fine
    assert kinds(pending) == [ConsentEvent.Kind.CONFIRM]
    event = ConsentEvent.objects.get()
    assert event.ip_address == "198.51.100.0" and event.user_agent == "UA" and event.newsletter == newsletter


def test_confirm_link_for_another_newsletter_adds_it_for_an_active_subscriber(client, newsletter, confirm_path):
    other = NewsletterFactory(slug="weekend")
    subscriber = subscribed(newsletter)
    client.post(confirm_path(subscriber, other))
    assert set(subscriber.subscriptions.values_list("newsletter__slug", flat=True)) == {newsletter.slug, "weekend"}


def test_confirm_after_unsubscribing_is_refused(client, newsletter, confirm_path):
    subscriber = SubscriberFactory(status=Subscriber.Status.UNSUBSCRIBED)
    response = client.post(confirm_path(subscriber, newsletter))
    assert response.status_code == 200 and b"t be used</h1>" in response.content
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED


def test_confirm_requires_csrf(newsletter, confirm_path):
    pending = SubscriberFactory(status=Subscriber.Status.PENDING)
    response = Client(enforce_csrf_checks=True).post(confirm_path(pending, newsletter))
    assert response.status_code == 403
    pending.refresh_from_db()
    assert pending.status == Subscriber.Status.PENDING


# --- Bad tokens --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post"])
def test_forged_expired_and_cross_purpose_tokens_get_a_friendly_page(client, newsletter, method, expired_token):
    subscriber = subscribed(newsletter)
    good = make_token(Purpose.CONFIRM, subscriber.token, newsletter.slug)
    cases = {
        f"/confirm/{good[:-3]}xyz/": 400,  # forged signature
        "/confirm/garbage/": 400,
        f"/confirm/{expired_token(Purpose.CONFIRM, subscriber.token, newsletter.slug, days_ago=8)}/": 410,
        f"/u/{good}/": 400,  # a confirmation token replayed as an unsubscribe token
        f"/u/{good}/one-click/": 400,
        f"/confirm/{make_token(Purpose.UNSUBSCRIBE, subscriber.token, newsletter.slug)}/": 400,
        f"/preferences/{make_token(Purpose.UNSUBSCRIBE, subscriber.token)}/": 400,
        f"/privacy/export/{make_token(Purpose.PREFERENCES, subscriber.token)}/": 400,
        f"/privacy/export/{expired_token(Purpose.EXPORT, subscriber.token, days_ago=3)}/": 410,
        f"/privacy/erase/{make_token(Purpose.PREFERENCES, subscriber.token)}/": 400,
        f"/preferences/{make_token(Purpose.PREFERENCES, '00000000-0000-0000-0000-000000000000')}/": 410,  # erased
    }
    for path, status in cases.items():
        response = getattr(client, method)(path)
        if path.endswith("one-click/") and method == "post":
            assert response.status_code == status, path
            continue
        assert response.status_code == status, path
        assert b"This link" in response.content, path
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE and not kinds(subscriber)


def test_unsubscribe_links_last_beyond_a_year_and_survive_a_key_rotation(client, newsletter, settings, expired_token):
    subscriber = subscribed(newsletter)
    old = expired_token(Purpose.UNSUBSCRIBE, subscriber.token, newsletter.slug, days_ago=500)
    assert client.get(f"/u/{old}/").status_code == 200
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-brand-new-secret-key-after-rotation-0123456789abcdefghijkl"
    assert client.get(f"/u/{old}/").status_code == 200
    assert client.post(f"/u/{old}/").status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    settings.SECRET_KEY_FALLBACKS = []
    assert client.get(f"/u/{old}/").status_code == 400  # the old key is gone: no longer trusted


# --- Unsubscribe -----------------------------------------------------------------------------------------------


def test_unsubscribe_get_shows_one_button_and_a_preferences_link(client, newsletter, unsubscribe_path):
    subscriber = subscribed(newsletter)
    response = client.get(unsubscribe_path(subscriber, newsletter))
    html = response.content.decode()
    main = html.split('<main id="main">', 1)[1]  # the language switch above it has buttons of its own
    assert response.status_code == 200 and main.count("<button") == 1
    assert "/preferences/" in main
    assert Subscription.objects.get().status == Subscription.Status.ACTIVE


def test_unsubscribe_post_from_one_newsletter(client, newsletter, unsubscribe_path):
    other = NewsletterFactory(slug="weekend")
    subscriber = subscribed(newsletter)
    SubscriptionFactory(subscriber=subscriber, newsletter=other)
    response = client.post(unsubscribe_path(subscriber, newsletter))
    assert response.status_code == 200 and b"re unsubscribed</h1>" in response.content
    states = dict(subscriber.subscriptions.values_list("newsletter__slug", "status"))
    assert states == {newsletter.slug: "unsubscribed", "weekend": "active"}
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE  # still gets the other one
    client.post(unsubscribe_path(subscriber, other))
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert kinds(subscriber) == ["unsubscribe", "unsubscribe"]


def test_unsubscribe_skips_pending_deliveries_of_an_issue_being_sent(client, newsletter, unsubscribe_path):
    subscriber = subscribed(newsletter)
    sending = IssueFactory(sending=True, newsletter=newsletter)
    paused = IssueFactory(sending=True, newsletter=newsletter, status=Issue.Status.PAUSED)
    pending = DeliveryFactory(issue=sending, subscriber=subscriber)
    deferred = DeliveryFactory(issue=paused, subscriber=subscriber, status=Delivery.Status.DEFERRED)
    already_sent = DeliveryFactory(
        issue=IssueFactory(sending=True, newsletter=newsletter), subscriber=subscriber, status="sent"
    )
    other_reader = DeliveryFactory(issue=sending, subscriber=subscribed(newsletter))
    other_newsletter = DeliveryFactory(
        issue=IssueFactory(sending=True, newsletter=NewsletterFactory()), subscriber=subscriber
    )

    client.post(unsubscribe_path(subscriber, newsletter))
    for row in (pending, deferred, already_sent, other_reader, other_newsletter):
        row.refresh_from_db()
    assert pending.status == deferred.status == Delivery.Status.SKIPPED
    assert pending.error_text == "unsubscribed"
    assert already_sent.status == Delivery.Status.SENT
    assert other_reader.status == other_newsletter.status == Delivery.Status.PENDING


# --- RFC 8058 one-click ----------------------------------------------------------------------------------------


def test_one_click_with_a_plain_http_client(live_server, newsletter, one_click_path):
    subscriber = subscribed(newsletter)
    url = live_server.url + one_click_path(subscriber, newsletter)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            raise AssertionError("one-click must not redirect")

    opener = urllib.request.build_opener(NoRedirect)
    with opener.open(urllib.request.Request(url, method="GET")) as response:  # GET changes nothing
        assert response.status == 200
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE

    for _ in range(2):  # idempotent
        request = urllib.request.Request(
            url,
            data=b"List-Unsubscribe=One-Click",
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        with opener.open(request) as response:
            assert response.status == 200
            assert response.headers.get("Set-Cookie") is None
            assert b"unsubscribed" in response.read()
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert kinds(subscriber) == [ConsentEvent.Kind.UNSUBSCRIBE]
    assert ConsentEvent.objects.get().source == ConsentEvent.Source.ONE_CLICK


def test_one_click_needs_no_csrf_but_the_rfc_body(newsletter, one_click_path):
    subscriber = subscribed(newsletter)
    client = Client(enforce_csrf_checks=True)
    path = one_click_path(subscriber, newsletter)
    assert client.post(path, {"something": "else"}).status_code == 400
    assert Subscription.objects.get().status == Subscription.Status.ACTIVE
    response = client.post(path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200 and not response.cookies
    assert Subscription.objects.get().status == Subscription.Status.UNSUBSCRIBED


def test_unsubscribe_page_post_requires_csrf(newsletter, unsubscribe_path):
    subscriber = subscribed(newsletter)
    assert Client(enforce_csrf_checks=True).post(unsubscribe_path(subscriber, newsletter)).status_code == 403
    assert Subscription.objects.get().status == Subscription.Status.ACTIVE


# --- Preferences -----------------------------------------------------------------------------------------------


def test_preferences_choose_newsletters_and_name(client, newsletter, preferences_path):
    weekend = NewsletterFactory(slug="weekend", name="Weekend")
    subscriber = subscribed(newsletter, name="Old")
    path = preferences_path(subscriber)
    html = client.get(path).content.decode()
    assert f'value="{newsletter.pk}"' in html and "checked" in html and "Weekend" in html
    response = client.post(path, {"newsletters": [weekend.pk], "name": "New\nName", "save": "1"})
    assert response.status_code == 302
    subscriber.refresh_from_db()
    assert subscriber.name == "New Name"
    states = dict(subscriber.subscriptions.values_list("newsletter__slug", "status"))
    assert states == {newsletter.slug: "unsubscribed", "weekend": "active"}
    event = ConsentEvent.objects.get(subscriber=subscriber)
    assert event.kind == "preferences" and "added weekend" in event.detail and "removed daily-brief" in event.detail
    assert "Your preferences are saved." in client.get(path).content.decode()


def test_preferences_leave_everything_and_come_back(client, newsletter, preferences_path):
    subscriber = subscribed(newsletter)
    path = preferences_path(subscriber)
    client.post(path, {"leave": "1"})
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    client.post(path, {"newsletters": [newsletter.pk], "name": subscriber.name})
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.ACTIVE
    assert kinds(subscriber) == ["unsubscribe", "preferences"]


def test_preferences_cannot_resubscribe_a_suppressed_address(client, newsletter, preferences_path):
    subscriber = SubscriberFactory(status=Subscriber.Status.SUPPRESSED)
    response = client.post(preferences_path(subscriber), {"newsletters": [newsletter.pk]}, follow=True)
    assert b"We can&#x27;t send email to this address" in response.content
    assert not subscriber.subscriptions.exists()


# --- Rate limits -------------------------------------------------------------------------------------------------


def test_signup_rate_limit_per_ip_returns_a_friendly_429(client, newsletter, settings):
    settings.MASTHEAD = {**settings.MASTHEAD, "RATE_LIMITS": {"signup_ip": "3/m"}}
    url = f"/subscribe/{newsletter.slug}/"
    codes = [
        client.post(url, {"email": f"r{i}@example.com", "consent": "on"}, REMOTE_ADDR="192.0.2.1").status_code
        for i in range(5)
    ]
    assert codes == [302, 302, 302, 429, 429]
    response = client.post(url, {"email": "x@example.com", "consent": "on"}, REMOTE_ADDR="192.0.2.1")
    assert b"Too many attempts" in response.content and response["Retry-After"]
    assert Subscriber.objects.count() == 3
    assert client.post(url, {"email": "y@example.com", "consent": "on"}, REMOTE_ADDR="192.0.2.2").status_code == 302


def test_signup_rate_limit_per_address_across_ips(client, newsletter, settings):
    settings.MASTHEAD = {**settings.MASTHEAD, "RATE_LIMITS": {"signup_address": "2/h"}}
    url = f"/subscribe/{newsletter.slug}/"
    codes = [
        client.post(url, {"email": "Target@example.com", "consent": "on"}, REMOTE_ADDR=f"192.0.2.{i}").status_code
        for i in range(1, 5)
    ]
    assert codes == [302, 302, 429, 429]


def test_link_pages_rate_limit_per_link(client, newsletter, settings, preferences_path):
    settings.MASTHEAD = {**settings.MASTHEAD, "RATE_LIMITS": {"link_token": "2/m"}}
    subscriber = subscribed(newsletter)
    path = preferences_path(subscriber)
    codes = [client.post(path, {"name": f"n{i}"}, REMOTE_ADDR=f"192.0.2.{i}").status_code for i in range(3)]
    assert codes == [302, 302, 429]
    assert client.get(path).status_code == 200  # reading is never limited
