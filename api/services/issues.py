"""Composing an issue from a script: its texts and its articles in order, with the same rules as the admin (only
a draft changes; positions renumbered 1..n by `issue_renumber`)."""

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count

from newsletter import delivery
from newsletter.models import Article, Delivery, Issue, IssueArticle
from newsletter.services.composing import issue_renumber
from subscribers.models import MailEvent


class IssueInvalid(Exception):
    """`errors` maps a field (e.g. "articles.2.id") to what is wrong with it."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors.items()))
        self.errors = errors


class IssueLocked(Exception):
    """The issue is no longer a draft: what is sent (or being sent) never changes."""


@dataclass(frozen=True)
class Item:
    article_id: int
    blurb: str = ""


def _items_check(items: list[Item]) -> None:
    errors: dict[str, str] = {}
    known = set(Article.objects.filter(pk__in=[i.article_id for i in items]).values_list("pk", flat=True))
    seen: set[int] = set()
    for n, item in enumerate(items):
        if item.article_id not in known:
            errors[f"articles.{n}.id"] = f"no article has id {item.article_id}"
        elif item.article_id in seen:
            errors[f"articles.{n}.id"] = f"article {item.article_id} is already in the issue"
        seen.add(item.article_id)
    if errors:
        raise IssueInvalid(errors)


def _items_set(issue: Issue, items: list[Item]) -> None:
    issue.items.all().delete()
    IssueArticle.objects.bulk_create(
        IssueArticle(issue=issue, article_id=item.article_id, position=n, blurb=item.blurb)
        for n, item in enumerate(items, start=1)
    )
    issue_renumber(issue)


@transaction.atomic
def issue_compose(newsletter, subject: str, *, preheader: str = "", intro: str = "", items=(), user=None) -> Issue:
    """A new draft of `newsletter` with the articles of `items` in that order. Raises IssueInvalid."""
    items = list(items)
    _items_check(items)
    issue = Issue.objects.create(
        newsletter=newsletter, subject=subject, preheader=preheader, intro=intro, created_by=user
    )
    _items_set(issue, items)
    return issue


@transaction.atomic
def issue_edit(issue: Issue, *, items=None, **fields) -> Issue:
    """Change a draft's subject, preheader or intro and (when `items` is given) its articles. Raises IssueLocked
    for any other status, IssueInvalid for unknown or repeated articles."""
    issue = Issue.objects.select_for_update().get(pk=issue.pk)
    if not issue.is_editable:
        raise IssueLocked(f"The issue is {issue.get_status_display().lower()}; only a draft can be changed.")
    if items is not None:
        items = list(items)
        _items_check(items)
    for name in ("subject", "preheader", "intro"):
        if fields.get(name) is not None:
            setattr(issue, name, fields[name])
    issue.save()
    if items is not None:
        _items_set(issue, items)
    return issue


REPORT_STATUSES = (Issue.Status.SENT, Issue.Status.CANCELLED, Issue.Status.FAILED)


def issue_report(issue: Issue) -> dict | None:
    """What happened to a finished send: deliveries by outcome, bounces and complaints reported for it. None while
    the issue has not finished sending (there is no report yet)."""
    if issue.status not in REPORT_STATUSES or issue.started_at is None:
        return None
    counts = {status: 0 for status in Delivery.Status.values}
    for status, n in Delivery.objects.filter(issue=issue).values_list("status").annotate(n=Count("id")):
        counts[status] = n
    events = {kind: 0 for kind in MailEvent.Kind.values}
    for kind, n in MailEvent.objects.filter(issue=issue).values_list("kind").annotate(n=Count("id")):
        events[kind] = n
    return {
        "issue": issue.pk,
        "status": issue.status,
        "subject": issue.frozen_subject or issue.subject,
        "started_at": issue.started_at,
        "finished_at": issue.finished_at,
        "recipients": sum(counts.values()),
        "deliveries": counts,
        "hard_bounces": events[MailEvent.Kind.HARD_BOUNCE],
        "soft_bounces": events[MailEvent.Kind.SOFT_BOUNCE],
        "complaints": events[MailEvent.Kind.COMPLAINT],
        "complaint_rate": round(delivery.issue_complaint_rate(issue.pk), 6),
    }
