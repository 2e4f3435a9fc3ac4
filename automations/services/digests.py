"""Feed digests: at each scheduled slot, import the feed's new items and compose them into an issue.

A slot is claimed before any network I/O (a unique row per digest and slot, then a conditional UPDATE), so two
beats, a retried task or two workers compose it once. The feed is fetched through the article importer (the same
SSRF guard, sanitiser and de-duplication as every other door). Nothing is sent when nothing is new; a feed that
cannot be read is reported on the run and retried a few times within the slot's window; a feed with bad items
is composed for an editor to review, never sent by itself.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import F, Q
from django.utils import formats, timezone

from automations.models import FeedDigest, FeedDigestRun
from newsletter.models import Article, Issue, IssueArticle
from newsletter.services.importing import ImportSourceError, articles_import, format_guess, source_read
from newsletter.services.sending import SendError, issue_send_now

log = logging.getLogger(__name__)

# A slot found later than this (beat was down overnight) is skipped rather than sent hours late.
SLOT_WINDOW = timedelta(hours=1)
MAX_ATTEMPTS = 3
# A run still "running" after this lost its worker; another may take it over.
RUNNING_STALE = timedelta(minutes=10)


def digest_latest_slot(digest: FeedDigest, now: datetime) -> datetime | None:
    """The most recent scheduled moment at or before `now`, in UTC (None if the digest has no days). Local wall
    time in the digest's zone: "06:00 Europe/Madrid" stays 06:00 across daylight-saving changes."""
    zone = ZoneInfo(digest.time_zone)
    local_now = now.astimezone(zone)
    for days_back in range(8):
        day = local_now.date() - timedelta(days=days_back)
        if str(day.weekday()) not in digest.weekdays:
            continue
        slot = datetime.combine(day, digest.send_time, tzinfo=zone)
        if slot <= local_now:
            return slot.astimezone(UTC)
    return None


def digests_run_due(now: datetime | None = None) -> list[FeedDigestRun]:
    """Run every active digest whose slot has come (beat calls this every minute). Safe to run twice, at once
    included: a slot already claimed is left alone."""
    now = now or timezone.now()
    runs = []
    for digest in FeedDigest.objects.filter(active=True).select_related("newsletter"):
        slot = digest_latest_slot(digest, now)
        if slot is None or now - slot > SLOT_WINDOW:
            continue
        run = digest_slot_claim(digest, slot, now)
        if run is not None:
            runs.append(digest_run(run))
    return runs


def digest_slot_claim(digest: FeedDigest, slot: datetime, now: datetime) -> FeedDigestRun | None:
    """Take the slot: a new run row, or a failed/stale one to retry. None when someone else has it or it is done."""
    run, created = FeedDigestRun.objects.get_or_create(digest=digest, slot_at=slot, defaults={"attempts": 1})
    if created:
        return run
    retry = Q(status=FeedDigestRun.Status.FAILED, attempts__lt=MAX_ATTEMPTS) | Q(
        status=FeedDigestRun.Status.RUNNING, updated_at__lt=now - RUNNING_STALE
    )
    taken = FeedDigestRun.objects.filter(retry, pk=run.pk).update(
        status=FeedDigestRun.Status.RUNNING, attempts=F("attempts") + 1, updated_at=now
    )
    return FeedDigestRun.objects.select_related("digest__newsletter").get(pk=run.pk) if taken else None


def digest_run(run: FeedDigestRun) -> FeedDigestRun:
    """Fetch, import and compose the claimed slot; send it when the digest says so and nothing looks wrong."""
    digest = run.digest
    try:
        data, name = source_read(digest.feed_url)
        report = articles_import(data, format_guess(name, data), name=name)
    except ImportSourceError as exc:
        log.warning("digest %s: %s", digest.pk, exc)
        return _finish(run, FeedDigestRun.Status.FAILED, str(exc))
    articles = digest_new_articles(digest, report.keys)
    if not articles:
        return _finish(run, FeedDigestRun.Status.NOTHING_NEW, report.summary())
    with transaction.atomic():
        issue = Issue.objects.create(newsletter=digest.newsletter, subject=digest_subject(digest, run.slot_at))
        IssueArticle.objects.bulk_create(
            IssueArticle(issue=issue, article=article, position=n) for n, article in enumerate(articles, start=1)
        )
        run.issue = issue
        detail = f"{len(articles)} new article(s). {report.summary()}"
        if report.errors:
            # Some items could not be imported: an editor decides, the digest never sends half a feed.
            detail += " Not sent automatically: " + "; ".join(report.errors)
            return _finish(run, FeedDigestRun.Status.NEEDS_REVIEW, detail)
        _finish(run, FeedDigestRun.Status.COMPOSED, detail)
    if digest.auto_send:
        try:
            issue_send_now(issue)
        except SendError as exc:
            return _finish(run, FeedDigestRun.Status.NEEDS_REVIEW, f"{detail} Not sent: {exc}")
        return _finish(run, FeedDigestRun.Status.SENT, detail)
    return run


def digest_new_articles(digest: FeedDigest, keys: list[tuple[str, str]]) -> list[Article]:
    """The feed's articles (in feed order) that no issue of this newsletter has carried yet, at most
    `max_articles`. Items stored by an earlier import count too: "new" means new to the readers."""
    urls = [url for url, _ in keys if url]
    guids = [guid for _, guid in keys if guid]
    used = IssueArticle.objects.filter(issue__newsletter_id=digest.newsletter_id).values("article_id")
    candidates = Article.objects.filter(Q(canonical_url__in=urls) | Q(guid__in=guids)).exclude(id__in=used)
    by_url = {a.canonical_url: a for a in candidates if a.canonical_url}
    by_guid = {a.guid: a for a in candidates if a.guid}
    ordered: dict[int, Article] = {}
    for url, guid in keys:
        article = by_guid.get(guid) if guid else None
        article = article or (by_url.get(url) if url else None)
        if article is not None:
            ordered.setdefault(article.pk, article)
    return list(ordered.values())[: digest.max_articles]


def digest_subject(digest: FeedDigest, slot: datetime) -> str:
    """The editor's subject pattern with {newsletter} and {date} (local). Plain replacement, never str.format on
    a string an editor typed."""
    local = slot.astimezone(ZoneInfo(digest.time_zone)).date()
    subject = digest.subject.replace("{newsletter}", digest.newsletter.name)
    subject = subject.replace("{date}", formats.date_format(local, "j F Y"))
    return subject[: Issue._meta.get_field("subject").max_length]


def _finish(run: FeedDigestRun, status: str, detail: str) -> FeedDigestRun:
    run.status, run.detail = status, detail
    run.save(update_fields=["status", "detail", "issue", "updated_at"])
    return run
