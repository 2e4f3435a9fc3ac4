"""Newsletters: list and read (view permission)."""

from django.shortcuts import get_object_or_404
from ninja import Router, Schema

from api.auth import require
from api.schemas import Slug
from newsletter.models import Newsletter

router = Router(tags=["newsletters"])


class NewsletterOut(Schema):
    id: int
    slug: str
    name: str
    description: str
    from_name: str
    from_email: str
    reply_to: str
    archive_public: bool


@router.get("/", response=list[NewsletterOut], summary="List newsletters")
def newsletters_list(request):
    require(request, "newsletter.view_newsletter")
    return list(Newsletter.objects.order_by("name", "id"))


@router.get("/{slug}", response=NewsletterOut, summary="Read a newsletter")
def newsletters_read(request, slug: Slug):
    require(request, "newsletter.view_newsletter")
    return get_object_or_404(Newsletter, slug=slug)
