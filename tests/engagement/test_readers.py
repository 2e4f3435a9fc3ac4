"""Per-reader measurement: only for readers who agreed (a separate unticked choice at signup, recorded in the
ledger; changeable on the preferences page, whose withdrawal deletes their events), events deleted by erasure
at once and by retention after the period, the counts kept."""

import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from engagement import tokens
from engagement.models import Event, ReaderConsent, Tally, UniqueTally
from engagement.services import hits, retention, stats
from engagement.services.consent import reader_tracking_grant
from newsletter.models import TrackingMode
from subscribers.models import ConsentEvent, Subscriber
from subscribers.services.privacy import subscriber_erase
from subscribers.tokens import Purpose, make_token
from tests.factories import issue_to_send, subscribers_bulk

pytestmark = pytest.mark.django_db(transaction=True)

BROWSER = {"HTTP_USER_AGENT": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"}


@pytest.fixture
def per_reader_issue(settings):
    settings.MASTHEAD = {**settings.MASTHEAD, "ENGAGEMENT_MACHINE_SECONDS": 0}
    issue = issue_to_send()
    issue.newsletter.tracking_mode = TrackingMode.PER_READER
    issue.newsletter.save()
    readers = subscribers_bulk(issue.newsletter, 3)
    reader_tracking_grant(readers[0], issue.newsletter, ConsentEvent.Source.LINK)
    return issue, readers


def _click_all(client, smtp_server, parse, tracked_links, address):
    message = parse(smtp_server.to(address)[0].data)
    html_links, _text = tracked_links(message)
    for url in html_links[:2]:
        assert client.get(urlsplit(url).path, **BROWSER).status_code == 302
    return html_links


def test_only_readers_who_agreed_carry_their_delivery_and_get_events(
    per_reader_issue, smtp_server, start, drain, parse, client, tracked_links
):
    issue, readers = per_reader_issue
    start(issue)
    drain(issue)
    agreed = _click_all(client, smtp_server, parse, tracked_links, "reader0@example.com")
    other = _click_all(client, smtp_server, parse, tracked_links, "reader1@example.com")
    assert tokens.hit_parse(urlsplit(agreed[0]).path[3:]).delivery_id != 0
    assert tokens.hit_parse(urlsplit(other[0]).path[3:]).delivery_id == 0
    hits.hits_flush(now=time.time() + 60)
    assert set(Event.objects.values_list("subscriber_id", flat=True)) == {readers[0].pk}
    counts = stats.variant_counts(issue)[0]
    assert counts.human_clicks == 4 and counts.unique_clicks == 1  # only the reader who agreed is known


def test_signup_choice_is_separate_unticked_and_recorded_with_wording_and_version(client, settings):
    issue = issue_to_send()
    newsletter = issue.newsletter
    newsletter.tracking_mode = TrackingMode.PER_READER
    newsletter.save()
    page = client.get(f"/subscribe/{newsletter.slug}/").content.decode()
    assert 'name="measure"' in page and "checked" not in page.split('name="measure"')[1].split(">")[0]
    response = client.post(
        f"/subscribe/{newsletter.slug}/", {"email": "ada@example.com", "name": "Ada", "consent": "on", "measure": "on"}
    )
    assert response.status_code == 302
    ada = Subscriber.objects.get(email="ada@example.com")
    assert ReaderConsent.objects.filter(subscriber=ada, newsletter=newsletter).exists()
    event = ConsentEvent.objects.get(subscriber=ada, detail__contains="per-reader")
    assert "which stories I open and click" in event.consent_text
    assert event.policy_version == settings.MASTHEAD["POLICY_VERSION"]
    # Without the tick: signed up, not measured.
    client.post(f"/subscribe/{newsletter.slug}/", {"email": "bo@example.com", "consent": "on"})
    assert not ReaderConsent.objects.filter(subscriber__email="bo@example.com").exists()


def test_an_anonymous_form_never_turns_measurement_on_for_an_active_reader(client):
    issue = issue_to_send()
    issue.newsletter.tracking_mode = TrackingMode.PER_READER
    issue.newsletter.save()
    (reader,) = subscribers_bulk(issue.newsletter, 1)
    client.post(f"/subscribe/{issue.newsletter.slug}/", {"email": reader.email, "consent": "on", "measure": "on"})
    assert not ReaderConsent.objects.filter(subscriber=reader).exists()


def test_withdrawal_on_the_preferences_page_deletes_the_readers_events(
    per_reader_issue, smtp_server, start, drain, parse, client, tracked_links
):
    issue, readers = per_reader_issue
    start(issue)
    drain(issue)
    _click_all(client, smtp_server, parse, tracked_links, "reader0@example.com")
    hits.hits_flush(now=time.time() + 60)
    assert Event.objects.filter(subscriber=readers[0]).count() == 2
    path = f"/preferences/{make_token(Purpose.PREFERENCES, readers[0].token)}/"
    page = client.get(path).content.decode()
    assert "Measuring your reading" in page and f'value="{issue.newsletter.pk}"' in page
    response = client.post(path, {"measurement": "1"})  # the box unticked
    assert response.status_code == 302
    assert not Event.objects.filter(subscriber=readers[0]).exists()
    assert not ReaderConsent.objects.filter(subscriber=readers[0]).exists()
    assert ConsentEvent.objects.filter(subscriber=readers[0], detail__contains="withdrawn").count() == 1
    assert sum(Tally.objects.filter(issue=issue).values_list("count", flat=True)) == 2  # the counts stay
    # Later clicks of the same message count, linked to nobody.
    _click_all(client, smtp_server, parse, tracked_links, "reader0@example.com")
    hits.hits_flush(now=time.time() + 60)
    assert not Event.objects.exists()
    assert sum(Tally.objects.filter(issue=issue).values_list("count", flat=True)) == 4


def test_erasure_deletes_the_persons_events_at_once(
    per_reader_issue, smtp_server, start, drain, parse, client, tracked_links
):
    issue, readers = per_reader_issue
    start(issue)
    drain(issue)
    _click_all(client, smtp_server, parse, tracked_links, "reader0@example.com")
    hits.hits_flush(now=time.time() + 60)
    assert Event.objects.count() == 2
    subscriber_erase(readers[0])
    assert not Event.objects.exists() and not ReaderConsent.objects.exists()


def test_retention_rolls_old_events_into_the_counts_and_deletes_them(
    per_reader_issue, smtp_server, start, drain, parse, client, tracked_links
):
    issue, _readers = per_reader_issue
    start(issue)
    drain(issue)
    _click_all(client, smtp_server, parse, tracked_links, "reader0@example.com")
    hits.hits_flush(now=time.time() + 60)
    before = stats.variant_counts(issue)[0]
    assert before.unique_clicks == 1
    Event.objects.update(at=timezone.now() - timedelta(days=91))
    assert retention.events_expire() == 2
    assert retention.events_expire() == 0  # twice: nothing more
    assert not Event.objects.exists()
    assert UniqueTally.objects.get(issue=issue, link_number=UniqueTally.ANY_CLICK).count == 1
    after = stats.variant_counts(issue)[0]
    assert (after.human_clicks, after.unique_clicks) == (before.human_clicks, 1)
