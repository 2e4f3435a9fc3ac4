from django.contrib import admin

from .admin_sending import IssueSendingAdminMixin
from .models import Article, Issue, IssueArticle, Newsletter


@admin.register(Newsletter)
class NewsletterAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "from_email", "archive_public"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    list_display = ["headline", "section", "byline", "published_at"]
    search_fields = ["headline", "dek", "byline"]
    prepopulated_fields = {"slug": ["headline"]}


class IssueArticleInline(admin.TabularInline):
    model = IssueArticle
    autocomplete_fields = ["article"]
    extra = 0


@admin.register(Issue)
class IssueAdmin(IssueSendingAdminMixin, admin.ModelAdmin):
    list_display = ["subject", "newsletter", "status", "scheduled_at", "created_at"]
    list_filter = ["status", "newsletter"]
    inlines = [IssueArticleInline]
