"""Articles, created and updated by the CMS's own `external_id`."""

from datetime import datetime

from django.http import Http404
from ninja import Query, Router, Schema, Status

from api.auth import require
from api.errors import ApiProblem
from api.idempotency import IdempotencyKeyHeader, idempotent
from api.schemas import ExternalId, Limit, Text, cursor_dump, cursor_load
from api.services.articles import ArticleConflict, ArticleInvalid, article_by_external_id, article_upsert
from newsletter.models import Article

router = Router(tags=["articles"])


class ArticleFields(Schema):
    headline: Text(300, min_length=1)
    slug: Text(300) = ""
    dek: Text(5000) = ""
    byline: Text(200) = ""
    section: Text(100) = ""
    tags: Text(300) | list[Text(100)] = ""
    published_at: datetime | None = None
    canonical_url: Text(500) = ""
    guid: Text(500) = ""
    image_url: Text(500) = ""
    image_alt: Text(300) = ""
    key_facts: list[Text(1000)] = []
    body_html: Text(500_000) = ""
    body_markdown: Text(500_000) = ""
    commentary_html: Text(100_000) = ""
    bottom_line: Text(5000) = ""


class ArticleCreate(ArticleFields):
    external_id: ExternalId


class ArticleOut(Schema):
    id: int
    external_id: str | None
    headline: str
    slug: str
    dek: str
    byline: str
    section: str
    tags: str
    published_at: datetime
    canonical_url: str
    guid: str
    image_url: str
    image_alt: str
    key_facts: list
    body_html: str
    commentary_html: str
    bottom_line: str
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_external_id(obj) -> str | None:
        external = getattr(obj, "external", None) if hasattr(obj, "external") else None
        return external.external_id if external else None


class ArticlePage(Schema):
    items: list[ArticleOut]
    next_cursor: str | None


class ArticleFilters(Schema):
    cursor: Text(500) | None = None
    limit: Limit = 50
    updated_after: datetime | None = None


def _save(external_id: str, payload: ArticleFields, *, create_only: bool):
    try:
        return article_upsert(external_id, payload.model_dump(exclude={"external_id"}), create_only=create_only)
    except ArticleInvalid as exc:
        errors = [
            {"field": field if field != "__all__" else "", "location": "body", "message": message}
            for field, messages in exc.errors.items()
            for message in messages
        ]
        raise ApiProblem(422, str(exc), kind="validation", errors=errors) from exc
    except ArticleConflict as exc:
        raise ApiProblem(409, str(exc), kind="conflict") from exc


@router.get("/", response=ArticlePage, summary="List articles (newest id last; cursor pagination)")
def articles_list(request, filters: Query[ArticleFilters]):
    require(request, "newsletter.view_article")
    rows = Article.objects.select_related("external").filter(pk__gt=cursor_load(filters.cursor)).order_by("pk")
    if filters.updated_after:
        rows = rows.filter(updated_at__gt=filters.updated_after)
    items = list(rows[: filters.limit + 1])
    more = len(items) > filters.limit
    items = items[: filters.limit]
    return {"items": items, "next_cursor": cursor_dump(items[-1].pk) if more else None}


@router.post("/", response={201: ArticleOut}, summary="Create an article")
@idempotent(ArticleOut)
def articles_create(request, payload: ArticleCreate, idempotency_key: IdempotencyKeyHeader = None):
    require(request, "newsletter.add_article")
    article, _created = _save(payload.external_id, payload, create_only=True)
    return Status(201, article)


@router.get("/{external_id}", response=ArticleOut, summary="Read an article by the CMS's id")
def articles_read(request, external_id: ExternalId):
    require(request, "newsletter.view_article")
    article = article_by_external_id(external_id)
    if article is None:
        raise Http404
    return article


@router.put(
    "/{external_id}",
    response={200: ArticleOut, 201: ArticleOut},
    summary="Create or replace an article by the CMS's id (safe to retry)",
)
def articles_upsert(request, external_id: ExternalId, payload: ArticleFields):
    exists = article_by_external_id(external_id) is not None
    require(request, "newsletter.change_article" if exists else "newsletter.add_article")
    article, created = _save(external_id, payload, create_only=False)
    return Status(201 if created else 200, article)
