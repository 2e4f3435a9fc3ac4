"""A/B subjects: a random test share split evenly between two to four subjects; after the wait, the subject with
the best human click rate (human opens where no click was counted) goes to the rest by itself, and the report says
plainly when the difference may be chance."""

import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from engagement.models import Tally, Verdict
from engagement.services import hits
from newsletter.delivery.abtest import ab_choose, ab_decide, ab_report, ab_review
from newsletter.delivery.ledger import deliveries_ab_pick, deliveries_materialise
from newsletter.models import Delivery, Issue, SendRun, TrackingMode
from newsletter.services import sending
from tests.factories import NewsletterFactory, issue_to_send, subscribers_bulk

HELD, PENDING, SENT = Delivery.Status.HELD, Delivery.Status.PENDING, Delivery.Status.SENT


@dataclass
class Figures:
    delivered: int
    human_clicks: int = 0
    human_opens: int = 0


# Engagement's caches and hit queue start empty in every test here, as in tests/engagement.
pytestmark = pytest.mark.usefixtures("engagement_state")

BROWSER = {"HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"}


# --- the choice --------------------------------------------------------------------------------------------------


def test_a_clear_difference_is_called_significant():
    choice = ab_choose({1: Figures(1000, 20), 2: Figures(1000, 60)}, ["Council votes", "The vote, explained"])
    assert choice.winner == 2 and choice.metric == "clicks" and choice.significant
    assert choice.p_value < 0.001
    assert choice.summary.startswith("Subject B won with a human click rate of 6.0% against 2.0% (A)")
    assert "is significant" in choice.summary


def test_a_small_difference_is_said_plainly_to_be_maybe_chance():
    choice = ab_choose({1: Figures(100, 5), 2: Figures(100, 7)}, ["One", "Two"])
    assert choice.winner == 2 and not choice.significant
    assert "not significant" in choice.summary and "may well be chance" in choice.summary
    # Among four subjects the winner must beat every other one; here C is close behind B.
    four = ab_choose(
        {1: Figures(500, 5), 2: Figures(500, 40), 3: Figures(500, 35), 4: Figures(500, 4)}, ["a", "b", "c", "d"]
    )
    assert four.winner == 2 and not four.significant
    assert [f.successes for f in four.variants] == [5, 40, 35, 4]


def test_opens_decide_only_where_no_click_was_counted_and_nothing_measured_keeps_the_first():
    opens = ab_choose({1: Figures(400, 0, 80), 2: Figures(400, 0, 140)}, ["One", "Two"])
    assert (opens.winner, opens.metric, opens.significant) == (2, "opens", True)
    assert "human open rate" in opens.summary
    clicks_win = ab_choose({1: Figures(400, 3, 200), 2: Figures(400, 1, 10)}, ["One", "Two"])
    assert (clicks_win.winner, clicks_win.metric) == (1, "clicks")  # clicks were counted: opens do not decide
    nothing = ab_choose({1: Figures(400), 2: Figures(400)}, ["One", "Two"])
    assert (nothing.winner, nothing.metric, nothing.significant) == (1, "", False)
    assert "Nothing was measured" in nothing.summary
    assert ab_choose({1: Figures(10, 1), 2: Figures(10, 1)}, ["One", "Two"]).winner == 1  # a tie: the first


def test_the_settings_must_make_sense():
    newsletter = NewsletterFactory.build()
    for fields in ({"subject_b": "Hello"}, {"subject_b": "other", "canary_percent": 5}):
        with pytest.raises(ValidationError) as error:
            Issue(newsletter=newsletter, subject="hello", **fields).clean()
        assert "subject_b" in error.value.message_dict
    issue = Issue(newsletter=newsletter, subject="One", subject_c="Three", frozen_subject="One")
    assert issue.ab_subjects == ["One", "Three"]
    assert [issue.variant_subject(v) for v in (0, 1, 2)] == ["One", "One", "Three"]


@pytest.mark.django_db
def test_an_ab_test_needs_clicks_measured():
    newsletter = NewsletterFactory(tracking_mode=TrackingMode.OFF)
    with pytest.raises(ValidationError, match="tracking mode is off"):
        Issue(newsletter=newsletter, subject="hello", subject_b="other").clean()


# --- the ledger --------------------------------------------------------------------------------------------------


def ab_issue(readers: int, percent: int = 20, wait: int = 0, subjects: tuple[str, ...] = ("Second",)) -> Issue:
    issue = issue_to_send(subject="First")
    extra = dict(zip(("subject_b", "subject_c", "subject_d"), subjects, strict=False))
    Issue.objects.filter(pk=issue.pk).update(ab_test_percent=percent, ab_wait_minutes=wait, **extra)
    issue.refresh_from_db()
    subscribers_bulk(issue.newsletter, readers)
    return issue


@pytest.mark.django_db
def test_the_test_share_is_random_split_evenly_and_picked_once(django_capture_on_commit_callbacks):
    issue = ab_issue(200, percent=30, subjects=("Second", "Third"))
    with django_capture_on_commit_callbacks():
        sending.issue_send_now(issue)
    assert deliveries_materialise(issue.pk) is None
    test = Delivery.objects.filter(issue=issue, status=PENDING)
    assert Counter(test.values_list("variant", flat=True)) == {1: 20, 2: 20, 3: 20}
    assert Delivery.objects.filter(issue=issue, status=HELD, variant=0).count() == 140
    assert deliveries_ab_pick(issue) == 60  # twice: nothing more released
    assert test.count() == 60
    ids = sorted(test.values_list("subscriber_id", flat=True))
    assert ids[-1] - ids[0] > 60  # random, not the oldest readers
    report = sending.issue_progress(issue)["ab"]
    assert report["state"] == "testing" and [v["subject"] for v in report["variants"]] == ["First", "Second", "Third"]


def tally(issue: Issue, variant: int, count: int, verdict: int = Verdict.HUMAN, link: int = 1) -> None:
    """Recorded click rows as the engagement flush writes them (aggregate: per link, variant, verdict, hour)."""
    Tally.objects.create(issue=issue, link_number=link, variant=variant, verdict=verdict, hour=0, count=count)


@pytest.mark.django_db
def test_after_the_wait_the_recorded_clicks_choose_the_winner_once(django_capture_on_commit_callbacks):
    issue = ab_issue(100, percent=40, wait=30)
    with django_capture_on_commit_callbacks():
        sending.issue_send_now(issue)
    deliveries_materialise(issue.pk)
    Delivery.objects.filter(issue=issue, status=PENDING).update(status=SENT, sent_at=timezone.now())
    tally(issue, 2, 12)
    tally(issue, 1, 1)
    tally(issue, 1, 30, verdict=Verdict.MACHINE)  # a link scanner clicked everything of A: it counts for nothing

    now = timezone.now()
    assert ab_review(now) == 0  # the wait starts now
    run = SendRun.objects.get(pk=issue.pk)
    assert run.ab_wait_until == now + timedelta(minutes=30) and run.ab_winner is None
    assert ab_review(now + timedelta(minutes=29)) == 0
    with django_capture_on_commit_callbacks():
        assert ab_review(now + timedelta(minutes=31)) == 1
    assert not ab_decide(issue, now, lambda issue: {})  # decided once
    run.refresh_from_db()
    assert run.ab_winner == 2 and run.ab_result["significant"] is True
    assert [v["successes"] for v in run.ab_result["variants"]] == [1, 12]
    assert Counter(Delivery.objects.filter(issue=issue, status=PENDING).values_list("variant", flat=True)) == {2: 60}
    report = ab_report(issue)
    assert report["state"] == "decided" and report["winner_letter"] == "B" and "B won" in report["summary"]


@pytest.mark.django_db
def test_the_counting_source_is_injectable(django_capture_on_commit_callbacks):
    issue = ab_issue(40, percent=50, wait=0)
    with django_capture_on_commit_callbacks():
        sending.issue_send_now(issue)
    deliveries_materialise(issue.pk)
    Delivery.objects.filter(issue=issue, status=PENDING).update(status=SENT, sent_at=timezone.now())
    with django_capture_on_commit_callbacks():
        assert ab_review(timezone.now(), lambda issue: {1: Figures(10, 0, 1), 2: Figures(10, 0, 0)}) == 1
    run = SendRun.objects.get(pk=issue.pk)
    assert run.ab_winner == 1 and run.ab_result["metric"] == "opens" and not run.ab_result["significant"]


# --- real worker -------------------------------------------------------------------------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_ab_test_sends_the_winner_chosen_from_recorded_clicks_to_the_rest(
    celery_worker, smtp_server, quiet_smtp_log, client, admin_user, settings, parse, tracked_links, recover_until
):
    """Readers click the tracked links of the mail they received; engagement records the clicks (human, per
    variant); after the wait recovery picks the subject they clicked more and the worker sends it to the rest."""
    settings.MASTHEAD = {**settings.MASTHEAD, "ENGAGEMENT_MACHINE_SECONDS": 0}
    issue = ab_issue(80, percent=50, wait=30, subjects=("The vote, explained",))
    celery_worker(env={"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp_server.port)})
    sending.issue_send_now(issue)

    def test_share_measured() -> bool:
        return len(smtp_server.messages) == 40 and SendRun.objects.get(pk=issue.pk).ab_wait_until is not None

    recover_until(test_share_measured, "the test share to go out")
    subjects = Counter(m.message["Subject"] for m in smtp_server.messages)
    assert subjects == {"First": 20, "The vote, explained": 20}
    assert Delivery.objects.filter(issue=issue, status=HELD).count() == 40  # the rest waits for the winner

    # Twelve readers of B click a story in their mail, one reader of A does.
    firsts: dict[str, list[str]] = {}
    for received in smtp_server.messages:
        message = parse(received.data)
        firsts.setdefault(message["Subject"], []).append(tracked_links(message)[0][0])
    for url in firsts["The vote, explained"][:12] + firsts["First"][:1]:
        assert client.get(urlsplit(url).path, **BROWSER).status_code == 302
    assert hits.hits_flush(now=time.time() + 60).hits == 13

    # The wait is 30 minutes; recovery's step is run as it will be then (a frozen clock, not a 30-minute sleep).
    assert ab_review(timezone.now() + timedelta(minutes=31)) == 1
    recover_until(lambda: Issue.objects.get(pk=issue.pk).status == Issue.Status.SENT, "the rest")
    received = [r for m in smtp_server.messages for r in m.rcpt_tos]
    assert len(received) == len(set(received)) == 80
    subjects = Counter(m.message["Subject"] for m in smtp_server.messages)
    assert subjects == {"First": 20, "The vote, explained": 60}
    run = SendRun.objects.get(pk=issue.pk)
    assert run.ab_winner == 2 and [v["successes"] for v in run.ab_result["variants"]] == [1, 12]
    assert Counter(Delivery.objects.filter(issue=issue).values_list("variant", flat=True)) == {1: 20, 2: 60}

    client.force_login(admin_user)
    page = client.get(f"/admin/newsletter/issue/{issue.pk}/change/").content.decode()
    assert "A/B subject test" in page and "Subject B went to the rest." in page
    assert "the difference is significant" in page
    report = client.get(f"/admin/engagement/issue/{issue.pk}/").content.decode()
    assert "The vote, explained" in report and "Subject B won" in report
