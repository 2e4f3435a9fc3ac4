"""The benchmark's issue: the 37 KB one `make bench` has always sent, or one built to a message size (21 or 47 KB)
from newsroom-length stories, so figures can be stated for the sizes real issues have."""

from __future__ import annotations

from newsletter.demo_content import BODY_PARAGRAPH, COMMENTARY_PARAGRAPH

SENDER = {
    "name": "Bench Brief",
    "from_name": "The Bench Brief",
    "from_email": "brief@news.example.org",
    "reply_to": "desk@news.example.org",
    "postal_address": "1 Press Row, Springfield",
}


def newsletter_create(slug: str = "bench-brief"):
    from newsletter.models import Newsletter

    return Newsletter.objects.create(slug=slug, **SENDER)


def issue_create(newsletter, size_kb: int | None = None):
    """A draft issue of `newsletter`. Without a size: the historical seven short stories (about 37 KB). With one:
    stories with bodies and commentary are added until one personalised message reaches `size_kb`, then the last
    one's paragraphs are trimmed and an editor's note on it sized so the message lands just above it."""
    from newsletter.models import Issue, IssueArticle

    issue = Issue.objects.create(newsletter=newsletter, subject="Bench: the council votes", intro="Good morning. " * 20)
    if size_kb is None:
        for n in range(7):
            _article(issue, n, paragraphs=0)
        return issue
    target = size_kb * 1024
    n = 0
    while True:
        article = _article(issue, n, paragraphs=6)
        if message_size(issue) >= target:
            break
        n += 1
    for paragraphs in range(5, -1, -1):  # the last story a paragraph at a time …
        _fill(article, paragraphs)
        if message_size(issue) < target:
            break
    else:  # even the bare story overshoots: drop it, and size the note on the one before
        IssueArticle.objects.filter(issue=issue, article=article).delete()
        article.delete()
    item = IssueArticle.objects.filter(issue=issue).order_by("-position").first()
    low, high = 0, 1000  # … then a note of `words` words on it, by bisection: the smallest that reaches the target
    while low < high:
        words = (low + high) // 2
        item.blurb = " ".join(["council"] * words)
        item.save(update_fields=["blurb"])
        low, high = (low, words) if message_size(issue) >= target else (words + 1, high)
    item.blurb = " ".join(["council"] * low)
    item.save(update_fields=["blurb"])
    return issue


def message_size(issue) -> int:
    """Bytes of one personalised message of the issue as it renders now (what each recipient's SMTP DATA holds)."""
    from newsletter.delivery.messages import Recipient, personalise, skeleton_build
    from newsletter.models import Issue
    from newsletter.services.rendering import issue_render

    issue = Issue.objects.select_related("newsletter").get(pk=issue.pk)
    skeleton = skeleton_build(issue, issue_render(issue, use_cache=False))
    recipient = Recipient(1, "reader1@example.com", "Reader 1", "00000001-0000-4000-8000-000000000001")
    return len(personalise(skeleton, recipient).data)


def _article(issue, n: int, paragraphs: int):
    from newsletter.models import Article, IssueArticle

    article = Article.objects.create(
        headline=f"Story {n}: the council weighs a budget that grows by three per cent",
        slug=f"story-{issue.pk}-{n}",
        dek="What changed, why it matters, and what happens next for the people of the city. " * 4,
        canonical_url=f"https://news.example.org/2026/story-{issue.pk}-{n}",
        key_facts=[f"Fact {k}: the vote is on Thursday and the budget grows by 3 %." for k in range(5)],
        bottom_line="Watch the vote; the outcome decides next year's services. " * 3,
    )
    _fill(article, paragraphs)
    IssueArticle.objects.create(issue=issue, article=article, position=n)
    return article


def _fill(article, paragraphs: int) -> None:
    article.body_html = "".join(f"<p>{BODY_PARAGRAPH}</p>" for _ in range(paragraphs))
    article.commentary_html = "".join(f"<p>{COMMENTARY_PARAGRAPH}</p>" for _ in range(paragraphs // 2))
    article.save(update_fields=["body_html", "commentary_html", "updated_at"])
