"""Tags and segments: tags come from a CSV column and admin actions; a segment's rules mean the same thing as an
ORM filter (counts) and as the SQL fragment the materialise step uses."""

import io
from datetime import date, timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.utils import timezone

from engagement.models import OPEN, Event, Verdict
from newsletter.delivery.segments import rules_q, rules_sql, segment_rules
from newsletter.models import Delivery, Issue, Segment
from newsletter.services.sending import issue_send_now
from subscribers.models import Subscriber, SubscriberTag, Tag
from subscribers.services.importing import subscribers_import
from subscribers.services.tags import TagError, subscribers_tag, subscribers_untag, tag_for
from tests.factories import (
    IssueFactory,
    NewsletterFactory,
    SubscriberFactory,
    issue_to_send,
    subscribed,
    subscribers_bulk,
)

pytestmark = pytest.mark.django_db


def tags_of(email: str) -> list[str]:
    return sorted(
        SubscriberTag.objects.filter(subscriber__email=email).values_list("tag__name", flat=True)
    )  # fmt: skip


def test_a_csv_tags_column_tags_accepted_rows_only():
    newsletter = NewsletterFactory()
    subscribed(newsletter, email="known@example.com")
    SubscriberFactory(email="gone@example.com", status=Subscriber.Status.UNSUBSCRIBED)
    csv = (
        "email,name,tags\n"
        "ada@example.com,Ada,Local; sports\n"
        "known@example.com,Known,local|VIP\n"
        "gone@example.com,Gone,local\n"
        "bob@example.com,Bob,\n"
    )
    report = subscribers_import(io.StringIO(csv, newline=""), newsletter, consent_text="fair")
    assert (report.imported, report.unchanged, len(report.rejected)) == (2, 1, 1)
    assert tags_of("ada@example.com") == ["Local", "sports"]
    assert tags_of("known@example.com") == ["Local", "VIP"]  # one tag per name, whatever the case
    assert tags_of("gone@example.com") == [] and tags_of("bob@example.com") == []
    assert Tag.objects.count() == 3
    # The same file again adds nothing.
    subscribers_import(io.StringIO(csv, newline=""), newsletter, consent_text="fair")
    assert SubscriberTag.objects.count() == 4


def test_tag_services_are_idempotent_and_refuse_bad_names():
    a, b = SubscriberFactory(), SubscriberFactory()
    assert subscribers_tag([a.pk, b.pk], "  Weekend   readers ") == 2
    assert subscribers_tag([a.pk, b.pk], "weekend readers") == 0
    assert tag_for("WEEKEND READERS").name == "Weekend readers"
    assert subscribers_untag([a.pk], "weekend readers") == 1
    assert tags_of(b.email) == ["Weekend readers"] and tags_of(a.email) == []
    with pytest.raises(TagError, match="name"):
        subscribers_tag([a.pk], "   ")
    with pytest.raises(TagError, match="64"):
        subscribers_tag([a.pk], "x" * 65)


def test_the_admin_tags_the_selected_subscribers(client):
    a, b = SubscriberFactory(), SubscriberFactory()
    user = User.objects.create_user("ed", password="x", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_subscriber", "change_subscriber"]))
    client.force_login(user)
    data = {"action": "tag_selected", "_selected_action": [a.pk], "tag": "Harbour"}
    page = client.post("/admin/subscribers/subscriber/", data, follow=True).content.decode()
    assert "Tag “Harbour” added to 1 subscriber(s)." in page
    assert tags_of(a.email) == ["Harbour"] and tags_of(b.email) == []
    page = client.post("/admin/subscribers/subscriber/", {**data, "tag": ""}, follow=True).content.decode()
    assert "Type the tag" in page
    # Without the change permission the action is not offered at all.
    user.user_permissions.remove(Permission.objects.get(codename="change_subscriber"))
    client.force_login(User.objects.get(pk=user.pk))
    assert "tag_selected" not in client.get("/admin/subscribers/subscriber/").content.decode()


@pytest.fixture
def readers():
    newsletter = NewsletterFactory()
    now = timezone.now()
    people = {
        "ada": SubscriberFactory(email="ada@example.com", source="form", language="es"),
        "bob": SubscriberFactory(email="bob@example.com", source="import", language=""),
        "cy": SubscriberFactory(email="cy@example.com", source="embed", language="en"),
        "di": SubscriberFactory(email="di@example.com", source="form", language="en"),
    }
    Subscriber.objects.filter(pk=people["di"].pk).update(created_at=now - timedelta(days=40))
    subscribers_tag([people["ada"].pk, people["bob"].pk], "local")
    subscribers_tag([people["bob"].pk, people["cy"].pk], "sports")
    return newsletter, people


def members(rules) -> tuple[set[str], set[str]]:
    """The emails matching `rules` by the ORM filter and by the SQL fragment: they must agree."""
    by_orm = set(Subscriber.objects.filter(rules_q(rules)).values_list("email", flat=True))
    sql, params = rules_sql(rules, "s")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT s.email FROM {Subscriber._meta.db_table} s WHERE 1 = 1{sql}", params)
        by_sql = {row[0] for row in cursor.fetchall()}
    return by_orm, by_sql


@pytest.mark.parametrize(
    "build, expected",
    [
        (lambda t: {}, {"ada", "bob", "cy", "di"}),
        (lambda t: {"tags_any": [t["local"]]}, {"ada", "bob"}),
        (lambda t: {"tags_any": [t["local"], t["sports"]]}, {"ada", "bob", "cy"}),
        (lambda t: {"tags_any": [t["local"]], "tags_none": [t["sports"]]}, {"ada"}),
        (lambda t: {"sources": ["form"]}, {"ada", "di"}),
        (lambda t: {"languages": ["en"]}, {"bob", "cy", "di"}),  # blank is the default language
        (lambda t: {"languages": ["es"]}, {"ada"}),
        (lambda t: {"before": (date.today() - timedelta(days=30)).isoformat()}, {"di"}),
        (lambda t: {"after": (date.today() - timedelta(days=30)).isoformat(), "sources": ["form"]}, {"ada"}),
        # Tags count as they were at `as_of`: these were all added after an hour ago.
        (lambda t: {"tags_any": [t["local"]], "as_of": (timezone.now() - timedelta(hours=1)).isoformat()}, set()),
        (
            lambda t: {"tags_none": [t["local"]], "as_of": (timezone.now() - timedelta(hours=1)).isoformat()},
            {"ada", "bob", "cy", "di"},
        ),
        (
            lambda t: {"tags_any": [t["sports"]], "as_of": (timezone.now() + timedelta(hours=1)).isoformat()},
            {"bob", "cy"},
        ),
    ],
)
def test_rules_mean_the_same_in_sql_and_orm(readers, build, expected):
    tags = dict(Tag.objects.values_list("name", "id"))
    by_orm, by_sql = members(build(tags))
    assert by_orm == by_sql == {f"{name}@example.com" for name in expected}


def test_segment_rules_are_a_snapshot_of_the_segment(readers):
    newsletter, _ = readers
    segment = Segment.objects.create(newsletter=newsletter, name="Local Spanish", languages=["es"])
    segment.tags_any.add(Tag.objects.get(name="local"))
    rules = segment_rules(segment)
    assert rules == {"tags_any": [Tag.objects.get(name="local").pk], "languages": ["es"]}
    segment.tags_any.clear()
    assert members(rules)[0] == {"ada@example.com"}  # the snapshot, not the edited segment
    assert segment_rules(None) == {}


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_segment_send_reaches_exactly_its_members_frozen_at_start(
    celery_worker, smtp_server, client, admin_user, wait_for
):
    issue = issue_to_send()
    readers = subscribers_bulk(issue.newsletter, 30)
    subscribers_tag([r.pk for r in readers[:12]], "harbour")
    subscribers_tag([r.pk for r in readers[10:12]], "opted-out-of-harbour")
    segment = Segment.objects.create(newsletter=issue.newsletter, name="Harbour readers")
    segment.tags_any.add(Tag.objects.get(name="harbour"))
    segment.tags_none.add(Tag.objects.get(name="opted-out-of-harbour"))
    issue.segment = segment
    issue.save()
    members = {r.email for r in readers[:10]}

    # The editor sees the segment's size before sending.
    client.force_login(admin_user)
    page = client.get(f"/admin/newsletter/issue/{issue.pk}/send/").content.decode()
    assert "This issue will go to 10 subscribers." in page

    celery_worker(env={"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp_server.port)})
    issue_send_now(issue)
    # Editing the segment or tagging people once the send started changes nobody's mail.
    segment.tags_none.clear()
    subscribers_tag([r.pk for r in readers[20:]], "harbour")
    wait_for(lambda: Issue.objects.get(pk=issue.pk).status == Issue.Status.SENT, timeout=90, what="the send")
    received = [r for m in smtp_server.messages for r in m.rcpt_tos]
    assert sorted(received) == sorted(members)
    assert Delivery.objects.filter(issue=issue).count() == 10


# --- engagement --------------------------------------------------------------------------------------------------


def started_issue(newsletter, days_ago: int) -> Issue:
    issue = IssueFactory(newsletter=newsletter)
    Issue.objects.filter(pk=issue.pk).update(started_at=timezone.now() - timedelta(days=days_ago))
    return issue


def event(issue: Issue, reader, link: int = 1, verdict: int = Verdict.HUMAN, at=None) -> None:
    delivery = Delivery.objects.create(issue=issue, subscriber=reader, status=Delivery.Status.SENT)
    Event.objects.create(
        issue=issue, delivery=delivery, subscriber=reader, link_number=link, verdict=verdict, at=at or timezone.now()
    )


def test_clicked_in_the_last_issues_means_a_human_click_in_sql_and_orm(readers):
    newsletter, people = readers
    old, previous, last = (started_issue(newsletter, days) for days in (30, 7, 1))
    IssueFactory(newsletter=newsletter)  # a draft: never among the last issues
    event(last, people["ada"])  # a human click in the last issue
    event(last, people["bob"], verdict=Verdict.MACHINE)  # a link scanner: not a click
    event(previous, people["cy"], link=OPEN)  # an open, not a click
    event(old, people["di"])  # a click, but three issues ago

    segment = Segment.objects.create(newsletter=newsletter, name="Clickers", clicked_in_last_issues=2)
    rules = segment_rules(segment)
    assert rules == {"clicked_issues": sorted([previous.pk, last.pk])}
    assert members(rules) == ({"ada@example.com"},) * 2
    segment.clicked_in_last_issues = 3
    assert members(segment_rules(segment)) == ({"ada@example.com", "di@example.com"},) * 2
    # Frozen at a send's start: clicks after it, and issues started after it, do not count.
    an_hour_ago = timezone.now() - timedelta(hours=1)
    assert segment_rules(segment, as_of=timezone.now() - timedelta(days=2))["clicked_issues"] == sorted(
        [old.pk, previous.pk]
    )
    assert members({"clicked_issues": [last.pk], "as_of": an_hour_ago.isoformat()}) == (set(), set())
    # No issue yet: nobody, not everybody.
    assert members({"clicked_issues": []}) == (set(), set())
