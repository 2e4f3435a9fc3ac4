"""Segments: which of a newsletter's mailable readers an issue goes to.

A segment's rules are copied into plain data (`segment_rules`) when a send starts, so the audience is fixed then;
the same rules become an ORM filter (counts, previews) and an SQL fragment (the materialise INSERT … SELECT), one
definition for both, used by audience.py.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import TypedDict

from django.conf import settings
from django.db import connection
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from engagement.models import OPEN, Event, Verdict
from newsletter.models import Issue, Segment
from subscribers.models import SubscriberTag


class Rules(TypedDict, total=False):
    tags_any: list[int]
    tags_none: list[int]
    sources: list[str]
    languages: list[str]
    after: str  # ISO date, inclusive
    before: str  # ISO date, exclusive
    as_of: str  # ISO datetime: tags count as they were then (the send's start), later taggings don't
    clicked_issues: list[int]  # a human click (per-reader event) in one of these issues (the last N, fixed)


def segment_rules(segment: Segment | None, as_of: datetime | None = None) -> Rules:
    """The segment as data (empty for the whole newsletter). Only rules that restrict anything are kept. With
    `as_of` (a send's start), tags added later are ignored: the rows are written seconds after the start, and
    someone tagged in between is not in the audience the editor saw."""
    if segment is None:
        return {}
    rules: Rules = {"as_of": as_of.isoformat()} if as_of else {}
    if tags := sorted(segment.tags_any.values_list("id", flat=True)):
        rules["tags_any"] = tags
    if tags := sorted(segment.tags_none.values_list("id", flat=True)):
        rules["tags_none"] = tags
    if segment.sources:
        rules["sources"] = sorted(str(s) for s in segment.sources)
    if segment.languages:
        rules["languages"] = sorted(str(code) for code in segment.languages)
    if segment.signed_up_after:
        rules["after"] = segment.signed_up_after.isoformat()
    if segment.signed_up_before:
        rules["before"] = segment.signed_up_before.isoformat()
    if segment.clicked_in_last_issues:
        rules["clicked_issues"] = last_issue_ids(segment.newsletter_id, segment.clicked_in_last_issues, as_of)
    return rules


def last_issue_ids(newsletter_id: int, count: int, before: datetime | None = None) -> list[int]:
    """The newsletter's last `count` issues that started sending (before `before`: not the one starting now)."""
    issues = Issue.objects.filter(newsletter_id=newsletter_id, kind=Issue.Kind.ISSUE, started_at__isnull=False)
    if before:
        issues = issues.filter(started_at__lt=before)
    return sorted(issues.order_by("-started_at", "-id").values_list("id", flat=True)[:count])


def _day_start(iso: str) -> datetime:
    return timezone.make_aware(datetime.combine(date.fromisoformat(iso), time.min))


def _languages(rules: Rules) -> list[str]:
    """Blank means the site's default language (imported people), so that code matches blank too."""
    codes = list(rules["languages"])
    return [*codes, ""] if settings.LANGUAGE_CODE in codes else codes


def rules_q(rules: Rules) -> Q:
    """The rules as a filter on Subscriber."""
    q = Q()
    links = SubscriberTag.objects.filter(subscriber=OuterRef("pk"))
    if rules.get("as_of"):
        links = links.filter(created_at__lte=datetime.fromisoformat(rules["as_of"]))
    if rules.get("tags_any"):
        q &= Q(Exists(links.filter(tag_id__in=rules["tags_any"])))
    if rules.get("tags_none"):
        q &= ~Q(Exists(links.filter(tag_id__in=rules["tags_none"])))
    if rules.get("sources"):
        q &= Q(source__in=rules["sources"])
    if rules.get("languages"):
        q &= Q(language__in=_languages(rules))
    if rules.get("after"):
        q &= Q(created_at__gte=_day_start(rules["after"]))
    if rules.get("before"):
        q &= Q(created_at__lt=_day_start(rules["before"]))
    if "clicked_issues" in rules:
        clicks = Event.objects.filter(
            subscriber=OuterRef("pk"), issue_id__in=rules["clicked_issues"], verdict=Verdict.HUMAN
        ).exclude(link_number=OPEN)
        if rules.get("as_of"):
            clicks = clicks.filter(at__lte=datetime.fromisoformat(rules["as_of"]))
        q &= Q(Exists(clicks))
    return q


def rules_sql(rules: Rules, alias: str) -> tuple[str, list]:
    """The rules as an SQL condition on the subscriber table aliased `alias` (" AND …", or "" for none)."""
    tag_table = SubscriberTag._meta.db_table
    parts: list[str] = []
    params: list = []

    def placeholders(values: list) -> str:
        params.extend(values)
        return ", ".join(["%s"] * len(values))

    def tagged(tag_ids: list[int]) -> str:
        sql = f"EXISTS (SELECT 1 FROM {tag_table} t WHERE t.subscriber_id = {alias}.id"
        if rules.get("as_of"):
            sql += " AND t.created_at <= %s"
            params.append(connection.ops.adapt_datetimefield_value(datetime.fromisoformat(rules["as_of"])))
        return f"{sql} AND t.tag_id IN ({placeholders(tag_ids)}))"

    if rules.get("tags_any"):
        parts.append(tagged(rules["tags_any"]))
    if rules.get("tags_none"):
        parts.append(f"NOT {tagged(rules['tags_none'])}")
    if rules.get("sources"):
        parts.append(f"{alias}.source IN ({placeholders(rules['sources'])})")
    if rules.get("languages"):
        parts.append(f"{alias}.language IN ({placeholders(_languages(rules))})")
    if rules.get("after"):
        parts.append(f"{alias}.created_at >= %s")
        params.append(connection.ops.adapt_datetimefield_value(_day_start(rules["after"])))
    if rules.get("before"):
        parts.append(f"{alias}.created_at < %s")
        params.append(connection.ops.adapt_datetimefield_value(_day_start(rules["before"])))
    if "clicked_issues" in rules:
        if not rules["clicked_issues"]:
            parts.append("1 = 0")  # no issue to have clicked in: nobody
        else:
            issues = ", ".join(["%s"] * len(rules["clicked_issues"]))
            sql = (
                f"EXISTS (SELECT 1 FROM {Event._meta.db_table} e WHERE e.subscriber_id = {alias}.id"
                f" AND e.verdict = %s AND e.link_number <> %s AND e.issue_id IN ({issues})"
            )
            params.extend([int(Verdict.HUMAN), OPEN, *rules["clicked_issues"]])
            if rules.get("as_of"):
                sql += " AND e.at <= %s"
                params.append(connection.ops.adapt_datetimefield_value(datetime.fromisoformat(rules["as_of"])))
            parts.append(sql + ")")
    return ("".join(f" AND {p}" for p in parts), params)
