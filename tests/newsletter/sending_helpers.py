"""Shared set-up for the delivery tests: a newsletter with an issue that renders, and many subscribers quickly."""

from __future__ import annotations

from email import message_from_bytes, policy

from anymail.backends import test as anymail_test
from anymail.message import AnymailRecipientStatus
from django.utils import timezone

from newsletter.models import Article, Delivery, Issue, IssueArticle, Newsletter
from newsletter.services import delivery, sending
from subscribers.models import Subscriber, Subscription


def make_newsletter(slug: str = "daily-brief") -> Newsletter:
    return Newsletter.objects.create(
        name="Daily Brief",
        slug=slug,
        from_name="The Daily Brief",
        from_email="brief@news.example.org",
        reply_to="desk@news.example.org",
        postal_address="1 Press Row, Springfield",
    )


def make_issue(newsletter: Newsletter | None = None, subject: str = "Tuesday: the council votes") -> Issue:
    newsletter = newsletter or make_newsletter()
    issue = Issue.objects.create(newsletter=newsletter, subject=subject, intro="Good morning. Three stories today.")
    for n in range(2):
        article = Article.objects.create(
            headline=f"Story {n}: council weighs budget",
            slug=f"story-{n}",
            dek="What changed and why it matters.",
            canonical_url=f"https://news.example.org/story-{n}",
            key_facts=["The vote is on Thursday.", "The budget grows 3 %."],
            body_html="<p>Long body.</p>",
            bottom_line="Watch the vote.",
        )
        IssueArticle.objects.create(issue=issue, article=article, position=n)
    return issue


def make_subscribers(newsletter: Newsletter, count: int, start: int = 0, **fields) -> list[Subscriber]:
    """`count` active, subscribed readers (bulk inserts: thousands in well under a second)."""
    now = timezone.now()
    subscribers = Subscriber.objects.bulk_create(
        [
            Subscriber(
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
        [Subscription(subscriber=s, newsletter=newsletter) for s in subscribers], batch_size=2000
    )
    return subscribers


def counts(issue: Issue) -> dict[str, int]:
    result = {}
    for status in Delivery.Status.values:
        result[status] = Delivery.objects.filter(issue=issue, status=status).count()
    return result


def parse(data: bytes):
    return message_from_bytes(data, policy=policy.default)


def received_by_address(smtp_server) -> dict[str, int]:
    seen: dict[str, int] = {}
    with smtp_server.lock:
        messages = list(smtp_server.messages)
    for message in messages:
        for address in message.rcpt_tos:
            seen[address] = seen.get(address, 0) + 1
    return seen


def start(issue: Issue) -> None:
    """Start the send and materialise in-process (the task queue is not consumed by in-process tests)."""
    assert sending.issue_start_send(issue.pk)
    assert delivery.deliveries_materialise(issue.pk) is None
    issue.refresh_from_db()


def drain(issue: Issue, batches: int = 100) -> None:
    """Run batches in this process until none is left, then finish the issue as recovery would."""
    for _ in range(batches):
        result = delivery.deliveries_send_batch(issue.pk)
        if not result.more:
            break
    sending.issue_finish(issue.pk)
    issue.refresh_from_db()


# An ESP simulated by anymail's own test backend (the whole anymail send path: payload, recipient status parsing,
# anymail_status on the message), answering "rejected"/"invalid" for these addresses as a real ESP would for a
# suppressed or malformed recipient, and "queued" with its own message id for everyone else. Importable by worker
# processes (EMAIL_BACKEND=ESP_BACKEND).
ESP_REFUSES = {"reader3@example.com": "rejected", "reader5@example.com": "invalid"}


class EspBackend(anymail_test.EmailBackend):
    def post_to_esp(self, payload, message):
        response = super().post_to_esp(payload, message)
        for email in payload.recipient_emails:
            status = ESP_REFUSES.get(email, "queued")
            message_id = None if email in ESP_REFUSES else f"esp-{email}"
            response["recipient_status"][email] = AnymailRecipientStatus(message_id, status)
        return response


ESP_BACKEND = f"{__name__}.EspBackend"
