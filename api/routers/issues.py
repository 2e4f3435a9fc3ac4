"""Issues: compose from articles in order, edit a draft, preview, schedule, send, pause, resume, cancel, follow
the progress, read the report. Sending needs `newsletter.send_issue`, like the admin's buttons."""

from datetime import datetime

from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Query, Router, Schema, Status
from pydantic import AwareDatetime, Field

from api.auth import require
from api.errors import ApiProblem, field_problem
from api.idempotency import IdempotencyKeyHeader, idempotent
from api.schemas import Id, Limit, Slug, Text, cursor_dump, cursor_load
from api.services.issues import IssueInvalid, IssueLocked, Item, issue_compose, issue_edit, issue_report
from newsletter.models import Issue, Newsletter
from newsletter.services.composing import issue_preview, preview_values
from newsletter.services.rendering import RenderError
from newsletter.services.sending import (
    SendError,
    issue_cancel,
    issue_pause,
    issue_progress,
    issue_resume,
    issue_schedule,
    issue_send_now,
    issue_unschedule,
)

router = Router(tags=["issues"])


class IssueItemIn(Schema):
    id: Id = Field(description="An article id (as the articles endpoints return it).")
    blurb: Text(5000) = ""


class IssueCreate(Schema):
    newsletter: Slug
    subject: Text(200, min_length=1)
    preheader: Text(200) = ""
    intro: Text(20_000) = ""
    articles: list[IssueItemIn] = Field(default=[], max_length=100, description="In the order they appear.")


class IssueUpdate(Schema):
    subject: Text(200, min_length=1) | None = None
    preheader: Text(200) | None = None
    intro: Text(20_000) | None = None
    articles: list[IssueItemIn] | None = Field(default=None, max_length=100)


class IssueItemOut(Schema):
    id: int
    external_id: str | None
    headline: str
    position: int
    blurb: str


class IssueOut(Schema):
    id: int
    newsletter: str
    subject: str
    preheader: str
    intro: str
    status: str
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    updated_at: datetime
    articles: list[IssueItemOut]

    @staticmethod
    def resolve_newsletter(obj) -> str:
        return obj.newsletter.slug

    @staticmethod
    def resolve_articles(obj) -> list[dict]:
        return [
            {
                "id": item.article_id,
                "external_id": getattr(getattr(item.article, "external", None), "external_id", None)
                if hasattr(item.article, "external")
                else None,
                "headline": item.article.headline,
                "position": item.position,
                "blurb": item.blurb,
            }
            for item in obj.items.select_related("article__external").order_by("position", "id")
        ]


class IssuePage(Schema):
    items: list[IssueOut]
    next_cursor: str | None


class IssueFilters(Schema):
    newsletter: Slug | None = None
    status: Issue.Status | None = None
    cursor: Text(500) | None = None
    limit: Limit = 50


class ScheduleIn(Schema):
    at: AwareDatetime = Field(description="When to send, with a time zone; in the future.")


class PreviewOut(Schema):
    subject: str
    html: str
    text: str


class ProgressOut(Schema):
    issue: int
    status: str
    status_display: str
    total: int
    counts: dict[str, int]
    done: int
    remaining: int
    percent: float
    rate: float
    eta_seconds: int | None
    materialised: bool
    started_at: str | None
    finished_at: str | None
    finished: bool


class ReportOut(Schema):
    issue: int
    status: str
    subject: str
    started_at: datetime
    finished_at: datetime | None
    recipients: int
    deliveries: dict[str, int]
    hard_bounces: int
    soft_bounces: int
    complaints: int
    complaint_rate: float


def _issue(issue_id: int) -> Issue:
    return get_object_or_404(Issue.objects.select_related("newsletter"), pk=issue_id)


def _items(articles: list[IssueItemIn] | None) -> list[Item] | None:
    return None if articles is None else [Item(a.id, a.blurb) for a in articles]


def _invalid(exc: IssueInvalid) -> ApiProblem:
    errors = [{"field": field, "location": "body", "message": message} for field, message in exc.errors.items()]
    return ApiProblem(422, str(exc), kind="validation", errors=errors)


@router.get("/", response=IssuePage, summary="List issues (cursor pagination)")
def issues_list(request, filters: Query[IssueFilters]):
    require(request, "newsletter.view_issue")
    rows = Issue.objects.select_related("newsletter").filter(pk__gt=cursor_load(filters.cursor)).order_by("pk")
    if filters.newsletter:
        rows = rows.filter(newsletter__slug=filters.newsletter)
    if filters.status:
        rows = rows.filter(status=filters.status)
    items = list(rows[: filters.limit + 1])
    more = len(items) > filters.limit
    items = items[: filters.limit]
    return {"items": items, "next_cursor": cursor_dump(items[-1].pk) if more else None}


@router.post("/", response={201: IssueOut}, summary="Create a draft issue from articles in order")
@idempotent(IssueOut)
def issues_create(request, payload: IssueCreate, idempotency_key: IdempotencyKeyHeader = None):
    require(request, "newsletter.add_issue")
    newsletter = Newsletter.objects.filter(slug=payload.newsletter).first()
    if newsletter is None:
        raise field_problem("newsletter", f"no newsletter has the slug {payload.newsletter!r}")
    try:
        issue = issue_compose(
            newsletter,
            payload.subject,
            preheader=payload.preheader,
            intro=payload.intro,
            items=_items(payload.articles),
            user=request.auth,
        )
    except IssueInvalid as exc:
        raise _invalid(exc) from exc
    return Status(201, issue)


@router.get("/{issue_id}", response=IssueOut, summary="Read an issue")
def issues_read(request, issue_id: Id):
    require(request, "newsletter.view_issue")
    return _issue(issue_id)


@router.patch("/{issue_id}", response=IssueOut, summary="Change a draft (texts and/or its articles)")
def issues_update(request, issue_id: Id, payload: IssueUpdate):
    require(request, "newsletter.change_issue")
    issue = _issue(issue_id)
    try:
        return issue_edit(
            issue,
            subject=payload.subject,
            preheader=payload.preheader,
            intro=payload.intro,
            items=_items(payload.articles),
        )
    except IssueInvalid as exc:
        raise _invalid(exc) from exc
    except IssueLocked as exc:
        raise ApiProblem(409, str(exc), kind="conflict") from exc


@router.get("/{issue_id}/preview", response=PreviewOut, summary="Preview: subject, HTML and text as sent")
def issues_preview(request, issue_id: Id):
    require(request, "newsletter.view_issue")
    issue = _issue(issue_id)
    try:
        preview = issue_preview(issue, preview_values(request.auth))
    except RenderError as exc:
        raise ApiProblem(409, f"The issue does not render: {exc}", kind="render-error") from exc
    return {"subject": preview.subject, "html": preview.html, "text": preview.text}


def _control(request, issue_id: int, action) -> Issue:
    require(request, "newsletter.send_issue")
    issue = _issue(issue_id)
    try:
        action(issue)
    except SendError as exc:
        raise ApiProblem(409, str(exc), kind="conflict") from exc
    return _issue(issue_id)


@router.post("/{issue_id}/schedule", response=IssueOut, summary="Schedule a draft")
def issues_schedule(request, issue_id: Id, payload: ScheduleIn):
    if payload.at <= timezone.now():
        raise field_problem("at", "is in the past; choose a later time")
    return _control(request, issue_id, lambda issue: issue_schedule(issue, payload.at, user=request.auth))


@router.post("/{issue_id}/unschedule", response=IssueOut, summary="Back to draft")
def issues_unschedule(request, issue_id: Id):
    return _control(request, issue_id, issue_unschedule)


@router.post("/{issue_id}/send", response=IssueOut, summary="Send now")
def issues_send(request, issue_id: Id):
    return _control(request, issue_id, lambda issue: issue_send_now(issue, user=request.auth))


@router.post("/{issue_id}/pause", response=IssueOut, summary="Pause a send")
def issues_pause(request, issue_id: Id):
    return _control(request, issue_id, lambda issue: issue_pause(issue, reason=f"API, by {request.auth}"))


@router.post("/{issue_id}/resume", response=IssueOut, summary="Resume a paused send")
def issues_resume(request, issue_id: Id):
    return _control(request, issue_id, issue_resume)


@router.post("/{issue_id}/cancel", response=IssueOut, summary="Cancel a scheduled, sending or paused issue")
def issues_cancel(request, issue_id: Id):
    return _control(request, issue_id, issue_cancel)


@router.get("/{issue_id}/progress", response=ProgressOut, summary="Progress of a send")
def issues_progress(request, issue_id: Id):
    require(request, "newsletter.view_issue")
    return issue_progress(_issue(issue_id))


@router.get("/{issue_id}/report", response=ReportOut, summary="The report of a finished send")
def issues_report(request, issue_id: Id):
    require(request, "newsletter.view_issue")
    issue = _issue(issue_id)
    report = issue_report(issue)
    if report is None:
        raise ApiProblem(409, f"The issue is {issue.get_status_display().lower()}; its report exists once it is sent.")
    return report
