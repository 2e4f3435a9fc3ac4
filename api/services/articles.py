"""Articles pushed by a CMS, created and updated by the CMS's own id. Validated by the importer's form (the
admin's field rules) and cleaned by `article_sanitize`, so an article from the API is stored exactly as clean
as one typed into the admin or pulled from a feed."""

from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from api.models import ExternalArticle
from newsletter.models import Article
from newsletter.services.composing import article_sanitize
from newsletter.services.importing import ArticleImportForm


class ArticleInvalid(Exception):
    """The fields do not make a valid article; `errors` maps each field to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{f}: {' '.join(m)}" for f, m in errors.items()))
        self.errors = errors


class ArticleConflict(Exception):
    """Another article already has this canonical URL or guid."""


def article_by_external_id(external_id: str) -> Article | None:
    link = ExternalArticle.objects.select_related("article").filter(external_id=external_id).first()
    return link.article if link else None


def _duplicates_check(fields: dict[str, Any], article: Article | None) -> None:
    for name in ("canonical_url", "guid"):
        value = fields.get(name)
        if not value:
            continue
        other = Article.objects.filter(**{name: value}).exclude(pk=getattr(article, "pk", None)).first()
        if other is not None:
            raise ArticleConflict(f"Article {other.pk} (“{other.headline[:60]}”) already has this {name}.")


def article_upsert(external_id: str, fields: dict[str, Any], *, create_only: bool = False) -> tuple[Article, bool]:
    """Create the article known to the CMS as `external_id`, or replace its fields. `fields` are the editable
    article fields (see ARTICLE_EDITABLE_FIELDS) plus optional `body_markdown`. Returns (article, created).
    Raises ArticleInvalid, ArticleConflict (a duplicate canonical URL or guid, or with `create_only` an
    external id that exists)."""
    fields = dict(fields)
    markdown = fields.pop("body_markdown", "") or ""
    if isinstance(fields.get("tags"), list):
        fields["tags"] = ", ".join(str(t).strip() for t in fields["tags"] if str(t).strip())
    if not fields.get("slug"):
        fields["slug"] = slugify(fields.get("headline") or "")[:300] or "article"
    if fields.get("published_at") is None:
        fields["published_at"] = datetime.now(tz=UTC)
    with transaction.atomic():
        link = ExternalArticle.objects.select_for_update().select_related("article").filter(external_id=external_id)
        link = link.first()
        if link and create_only:
            raise ArticleConflict(f"An article with external_id {external_id!r} exists; update it with PUT.")
        _duplicates_check(fields, link.article if link else None)
        form = ArticleImportForm(data=fields, instance=link.article if link else None)
        if not form.is_valid():
            raise ArticleInvalid({name: list(messages) for name, messages in form.errors.items()})
        article = article_sanitize(form.save(commit=False), body_markdown=markdown)
        try:
            with transaction.atomic():
                article.save()
                if link is None:
                    ExternalArticle.objects.create(external_id=external_id, article=article)
        except IntegrityError as exc:
            raise ArticleConflict(
                "Another article already has this canonical_url or guid, or this external_id was created just now."
            ) from exc
    return article, link is None
