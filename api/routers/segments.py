"""Segments: read-only. Each says how many readers an issue sent to it now would reach (the same count the admin
and the send page show); segments are defined in the admin."""

from datetime import date

from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema
from pydantic import Field

from api.auth import require
from api.schemas import Id, Slug
from newsletter import delivery
from newsletter.models import Segment

router = Router(tags=["segments"])


class SegmentOut(Schema):
    id: int
    name: str
    newsletter: str = Field(description="The newsletter's slug.")
    tags_any: list[str] = Field(description="Has at least one of these tags (empty: no restriction).")
    tags_none: list[str] = Field(description="Has none of these tags.")
    sources: list[str]
    languages: list[str]
    signed_up_after: date | None
    signed_up_before: date | None
    clicked_in_last_issues: int | None = Field(description="Clicked a link in one of the last N issues.")
    recipients: int = Field(description="Mailable readers in the segment now.")

    @staticmethod
    def resolve_newsletter(obj) -> str:
        return obj.newsletter.slug

    @staticmethod
    def resolve_tags_any(obj) -> list[str]:
        return sorted(tag.name for tag in obj.tags_any.all())

    @staticmethod
    def resolve_tags_none(obj) -> list[str]:
        return sorted(tag.name for tag in obj.tags_none.all())

    @staticmethod
    def resolve_sources(obj) -> list[str]:
        return [str(s) for s in obj.sources or []]

    @staticmethod
    def resolve_languages(obj) -> list[str]:
        return [str(code) for code in obj.languages or []]

    @staticmethod
    def resolve_recipients(obj) -> int:
        return delivery.mailable_subscribers(obj.newsletter_id, delivery.segment_rules(obj)).count()


class SegmentFilters(Schema):
    newsletter: Slug | None = None


def _segments():
    return Segment.objects.select_related("newsletter").prefetch_related("tags_any", "tags_none")


@router.get("/", response=list[SegmentOut], summary="List segments with their recipient counts")
def segments_list(request, filters: Query[SegmentFilters]):
    require(request, "newsletter.view_segment")
    rows = _segments().order_by("newsletter__slug", "name", "id")
    if filters.newsletter:
        rows = rows.filter(newsletter__slug=filters.newsletter)
    return list(rows)


@router.get("/{segment_id}", response=SegmentOut, summary="Read a segment")
def segments_read(request, segment_id: Id):
    require(request, "newsletter.view_segment")
    return get_object_or_404(_segments(), pk=segment_id)
