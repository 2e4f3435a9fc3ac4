"""Send windows: each reader gets an issue at a local time of their own zone, or only inside a local window. The
rows of readers whose time has not come wait in the ledger (deferred, never attempted) and are claimed when due."""

import io
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from newsletter.delivery.ledger import deliveries_claim, deliveries_materialise
from newsletter.delivery.windows import release_at
from newsletter.models import Delivery, Issue
from newsletter.services import sending
from subscribers.models import Subscriber
from subscribers.services.importing import subscribers_import
from tests.factories import NewsletterFactory, issue_to_send, subscribed

DEFERRED, PENDING = Delivery.Status.DEFERRED, Delivery.Status.PENDING


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def window_issue(**fields) -> Issue:
    return Issue(**{"subject": "x", **fields})


# --- when each reader may get it ---------------------------------------------------------------------------------


def test_a_local_time_is_the_next_one_in_each_readers_zone():
    issue = window_issue(local_time=clock(7, 0))
    started = utc(2026, 12, 4, 5, 0)  # 06:00 in Madrid, 00:00 in New York, 14:00 in Tokyo
    assert release_at(issue, "Europe/Madrid", started) == utc(2026, 12, 4, 6, 0)
    assert release_at(issue, "America/New_York", started) == utc(2026, 12, 4, 12, 0)
    assert release_at(issue, "Asia/Tokyo", started) == utc(2026, 12, 4, 22, 0)  # passed there: tomorrow's 07:00
    assert release_at(issue, "", started) == utc(2026, 12, 4, 7, 0)  # no zone: the site's (UTC in tests)
    assert release_at(issue, "Europe/Madrid", utc(2026, 12, 4, 6, 0)) is None  # exactly now: at once
    # Across the change to summer time: still 07:00 on the clock (05:00 UTC instead of 06:00).
    assert release_at(issue, "Europe/Madrid", utc(2026, 3, 28, 12, 0)) == utc(2026, 3, 29, 5, 0)


def test_a_window_sends_at_once_inside_it_and_at_its_opening_outside():
    issue = window_issue(window_start=clock(7, 0), window_end=clock(21, 0))
    started = utc(2026, 12, 4, 5, 0)
    assert release_at(issue, "Asia/Tokyo", started) is None  # 14:00 there
    assert release_at(issue, "Europe/Madrid", started) == utc(2026, 12, 4, 6, 0)
    assert release_at(issue, "Asia/Kolkata", utc(2026, 12, 4, 16, 0)) == utc(2026, 12, 5, 1, 30)  # 21:30 there
    overnight = window_issue(window_start=clock(21, 0), window_end=clock(7, 0))
    assert release_at(overnight, "America/New_York", started) is None  # midnight is inside 21:00–07:00
    assert release_at(overnight, "Asia/Tokyo", started) == utc(2026, 12, 4, 12, 0)  # 21:00 Tokyo
    assert release_at(window_issue(), "Asia/Tokyo", started) is None  # no window: at once


def test_the_settings_must_make_sense():
    newsletter = NewsletterFactory.build()
    for fields, field in (
        ({"window_start": clock(7)}, "window_end"),
        ({"window_start": clock(7), "window_end": clock(7)}, "window_end"),
        ({"local_time": clock(7), "window_start": clock(7), "window_end": clock(9)}, "local_time"),
        ({"local_time": clock(7), "canary_percent": 5}, "canary_percent"),
    ):
        with pytest.raises(ValidationError) as error:
            Issue(newsletter=newsletter, subject="x", **fields).clean()
        assert field in error.value.message_dict


# --- where readers' zones come from ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_signup_page_keeps_a_real_time_zone_and_ignores_anything_else(client):
    NewsletterFactory(slug="daily-brief")
    form = {"email": "ada@example.com", "consent": "on", "time_zone": "America/Argentina/Buenos_Aires"}
    page = client.get("/subscribe/daily-brief/").content.decode()
    assert 'name="time_zone"' in page and "subscribers/time_zone.js" in page
    assert client.post("/subscribe/daily-brief/", form).status_code == 302
    assert Subscriber.objects.get(email="ada@example.com").time_zone == "America/Argentina/Buenos_Aires"
    client.post("/subscribe/daily-brief/", {**form, "email": "bob@example.com", "time_zone": "Mars/Olympus"})
    assert Subscriber.objects.get(email="bob@example.com").time_zone == ""


@pytest.mark.django_db
def test_an_import_column_sets_time_zones_and_refuses_unknown_ones():
    newsletter = NewsletterFactory()
    known = subscribed(newsletter, email="known@example.com")
    csv = (
        "email,time_zone\n"
        "ada@example.com,Europe/Madrid\n"
        "known@example.com,Asia/Tokyo\n"
        "bad@example.com,Central European\n"
        "none@example.com,\n"
    )
    report = subscribers_import(io.StringIO(csv, newline=""), newsletter, consent_text="fair")
    assert (report.imported, report.unchanged) == (2, 1)
    assert [(r.line, "IANA" in r.reason) for r in report.rejected] == [(4, True)]
    zones = dict(Subscriber.objects.values_list("email", "time_zone"))
    assert zones == {"ada@example.com": "Europe/Madrid", "known@example.com": "Asia/Tokyo", "none@example.com": ""}
    known.refresh_from_db()
    assert known.time_zone == "Asia/Tokyo"


# --- the ledger --------------------------------------------------------------------------------------------------


def readers_in(issue: Issue, zones: dict[str, str]) -> None:
    for email, zone in zones.items():
        subscribed(issue.newsletter, email=email, time_zone=zone)


@pytest.mark.django_db
def test_rows_wait_for_local_time_unclaimable_until_due(django_capture_on_commit_callbacks, client, admin_user):
    issue = issue_to_send()
    # A window open now in Tokyo only: the others wait for 07:00 of their own zone.
    now = timezone.now()
    tokyo = now.astimezone(ZoneInfo("Asia/Tokyo"))
    start, end = (tokyo - timedelta(minutes=1)).time(), (tokyo + timedelta(hours=1)).time()
    Issue.objects.filter(pk=issue.pk).update(window_start=start, window_end=end)
    issue.refresh_from_db()
    readers_in(issue, {"tokyo@example.com": "Asia/Tokyo", "madrid@example.com": "Europe/Madrid", "utc@example.com": ""})
    with django_capture_on_commit_callbacks():
        sending.issue_send_now(issue)
    assert deliveries_materialise(issue.pk) is None
    rows = {d.subscriber.email: d for d in Delivery.objects.filter(issue=issue).select_related("subscriber")}
    assert rows["tokyo@example.com"].status == PENDING
    issue.refresh_from_db()
    for email, zone in (("madrid@example.com", "Europe/Madrid"), ("utc@example.com", "UTC")):
        row = rows[email]
        assert (row.status, row.attempts) == (DEFERRED, 0)
        assert row.next_attempt_at == release_at(issue, zone, issue.started_at) > now
        local = row.next_attempt_at.astimezone(ZoneInfo(zone))
        assert (local.hour, local.minute) == (start.hour, start.minute)

    claim = deliveries_claim(issue)
    assert [r.email for r, _ in claim.recipients] == ["tokyo@example.com"]  # the others are not due

    progress = sending.issue_progress(issue)
    assert progress["counts"]["waiting_local_time"] == 2 and progress["local_time"]["waiting"] == 2
    client.force_login(admin_user)
    page = client.get(f"/admin/newsletter/issue/{issue.pk}/progress/").content.decode()
    assert "2 readers are waiting for local time" in page
    # Materialising again (a recovery after a crash) moves nobody.
    assert deliveries_materialise(issue.pk) is None
    assert Delivery.objects.filter(issue=issue, status=DEFERRED).count() == 2


# --- real worker -------------------------------------------------------------------------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_readers_in_two_zones_get_the_issue_at_their_own_local_time(
    celery_worker, smtp_server, quiet_smtp_log, recover_until
):
    """The window opens seconds from now in New York and is already open in Madrid (a frozen clock would say
    hours; here the opening is near): Madrid's reader gets it at once, New York's not before its opening."""
    issue = issue_to_send()
    readers_in(issue, {"madrid@example.com": "Europe/Madrid", "nyc@example.com": "America/New_York"})
    celery_worker(env={"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp_server.port)})
    new_york = timezone.now().astimezone(ZoneInfo("America/New_York"))
    opens = (new_york + timedelta(seconds=8)).replace(microsecond=0)
    # 8 s from now in New York to 7 h later: Madrid (6 h ahead) is inside it now.
    Issue.objects.filter(pk=issue.pk).update(window_start=opens.time(), window_end=(opens + timedelta(hours=7)).time())

    sending.issue_send_now(issue)
    recover_until(lambda: smtp_server.to("madrid@example.com"), "Madrid's mail")
    assert not smtp_server.to("nyc@example.com")
    waiting = Delivery.objects.get(issue=issue, subscriber__email="nyc@example.com")
    assert waiting.status == DEFERRED and waiting.next_attempt_at == opens
    assert sending.issue_progress(issue)["local_time"]["waiting"] == 1

    recover_until(lambda: smtp_server.to("nyc@example.com"), "New York's mail")
    sent = dict(Delivery.objects.filter(issue=issue).values_list("subscriber__email", "sent_at"))
    assert sent["madrid@example.com"] < opens <= sent["nyc@example.com"]
    recover_until(lambda: Issue.objects.get(pk=issue.pk).status == Issue.Status.SENT, "the send to finish")
    assert Delivery.objects.filter(issue=issue, status=Delivery.Status.SENT).count() == 2
