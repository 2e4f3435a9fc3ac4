"""The editor's admin: articles (search, filters, preview, import) and issues (compose, reorder, preview,
duplicate; read-only once they leave draft). Sending controls live in admin_sending.py.

Views here are adapters: check the permission, call a service, message the user. Anything that changes state is
POST-only (405 on GET) and checks an explicit permission (403 without it)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, IntegerField, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from .admin_import import ArticleImportAdminMixin
from .admin_sending import IssueSendingAdminMixin
from .models import ARTICLE_EDITABLE_FIELDS, Article, Delivery, Issue, IssueArticle, Newsletter
from .services.composing import article_sanitize, issue_duplicate, issue_preview, issue_renumber, preview_values
from .services.rendering import RenderError, article_render

GMAIL_CLIP_BYTES = 102 * 1024


@admin.register(Newsletter)
class NewsletterAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "from_email", "archive_public"]
    prepopulated_fields = {"slug": ["name"]}

    def view_on_site(self, obj: Newsletter) -> str:
        return reverse("newsletter:archive", args=[obj.slug])


# --- Articles --------------------------------------------------------------------------------------------------


class LinesField(forms.CharField):
    """A list of short strings edited as one per line (the key facts)."""

    widget = forms.Textarea(attrs={"rows": 5, "cols": 80})

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return "\n".join(str(v) for v in value)
        return value

    def to_python(self, value) -> list[str]:
        if isinstance(value, list):
            return value
        return [line.strip().lstrip("*-• ").strip() for line in (value or "").splitlines() if line.strip()]


class ArticleAdminForm(forms.ModelForm):
    # Feeds and editors paste bare hosts; https is the right guess (and Django 6's default).
    canonical_url = forms.URLField(max_length=500, required=False, assume_scheme="https")
    image_url = forms.URLField(max_length=500, required=False, assume_scheme="https")
    key_facts = LinesField(required=False, help_text=_("One fact per line."))
    body_markdown = forms.CharField(
        label=_("Body in Markdown"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 80}),
        help_text=_("Optional: write the body in Markdown instead; when filled it replaces the body HTML on save."),
    )

    class Meta:
        model = Article
        fields = ARTICLE_EDITABLE_FIELDS


class UsedInIssueFilter(admin.SimpleListFilter):
    title = _("used in an issue")
    parameter_name = "used"

    def lookups(self, request, model_admin):
        return [("yes", _("Used")), ("no", _("Not used yet"))]

    def queryset(self, request, queryset):
        used = Exists(IssueArticle.objects.filter(article=OuterRef("pk")))
        if self.value() == "yes":
            return queryset.filter(used)
        if self.value() == "no":
            return queryset.exclude(used)
        return queryset


@admin.register(Article)
class ArticleAdmin(ArticleImportAdminMixin, admin.ModelAdmin):
    form = ArticleAdminForm
    list_display = ["headline", "section", "byline", "published_at", "issue_count"]
    list_filter = ["section", ("published_at", admin.DateFieldListFilter), UsedInIssueFilter]
    search_fields = ["headline", "dek", "byline", "tags", "canonical_url"]
    date_hierarchy = "published_at"
    prepopulated_fields = {"slug": ["headline"]}
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["headline", "slug", "dek", "byline", "section", "tags", "published_at"]}),
        (_("Links and image"), {"fields": ["canonical_url", "guid", "image_url", "image_alt"]}),
        (_("Story"), {"fields": ["key_facts", "body_html", "body_markdown", "commentary_html", "bottom_line"]}),
        (_("Record"), {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]

    ordering = ["-published_at", "-id"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_issue_count=Count("issue_items"))

    @admin.display(description=_("Issues"), ordering="_issue_count")
    def issue_count(self, obj: Article) -> int:
        return obj._issue_count

    def save_model(self, request, obj: Article, form, change: bool) -> None:
        article_sanitize(obj, body_markdown=form.cleaned_data.get("body_markdown", ""))
        super().save_model(request, obj, form, change)

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                "<path:object_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name=f"{prefix}_preview",
            ),
            path(
                "<path:object_id>/preview/html/",
                self.admin_site.admin_view(self.preview_html_view),
                name=f"{prefix}_preview_html",
            ),
            *super().get_urls(),
        ]

    def _article_for_view(self, request: HttpRequest, object_id: str) -> Article:
        article = get_object_or_404(Article, pk=object_id)
        if not self.has_view_permission(request, article):
            raise PermissionDenied
        return article

    def _render(self, article: Article):
        newsletter = Newsletter.objects.first() or Newsletter(name="Newsletter", slug="preview", postal_address="")
        return article_render(article, newsletter)

    def preview_view(self, request: HttpRequest, object_id: str) -> TemplateResponse:
        article = self._article_for_view(request, object_id)
        context = {**self.admin_site.each_context(request), "opts": self.opts, "original": article}
        context["title"] = _("Preview: %(headline)s") % {"headline": article.headline}
        try:
            rendered = self._render(article)
            context["text"] = rendered.text
            context["html_url"] = reverse("admin:newsletter_article_preview_html", args=[article.pk])
        except RenderError as exc:
            context["error"] = exc
        return TemplateResponse(request, "admin/newsletter/article/preview.html", context)

    @xframe_options_sameorigin
    def preview_html_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        article = self._article_for_view(request, object_id)
        try:
            return HttpResponse(self._render(article).html)
        except RenderError as exc:
            return TemplateResponse(request, "admin/newsletter/issue/render_error.html", {"error": exc})


# --- Issues ----------------------------------------------------------------------------------------------------


class IssueArticleInline(admin.TabularInline):
    """The issue's articles in order. Rows follow the issue: editable while it is a draft by anyone who may change
    the issue, read-only after."""

    model = IssueArticle
    autocomplete_fields = ["article"]
    fields = ["position", "article", "blurb"]
    extra = 0
    classes = ["mh-reorderable"]

    class Media:
        js = ["newsletter/admin/issue_reorder.js"]
        css = {"all": ["newsletter/admin/issue_reorder.css"]}

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "blurb":
            kwargs["widget"] = forms.Textarea(attrs={"rows": 2, "cols": 50})
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def _may_edit(self, request, obj) -> bool:
        if obj is not None and not obj.is_editable:
            return False
        return request.user.has_perm("newsletter.change_issue") or (
            obj is None and request.user.has_perm("newsletter.add_issue")
        )

    def has_add_permission(self, request, obj=None) -> bool:
        return self._may_edit(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._may_edit(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._may_edit(request, obj)

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("newsletter.view_issue") or request.user.has_perm("newsletter.change_issue")


@admin.register(Issue)
class IssueAdmin(IssueSendingAdminMixin, admin.ModelAdmin):
    list_display = ["subject", "newsletter", "status", "article_count", "delivery_counts", "scheduled_at", "created_at"]
    list_filter = ["status", "newsletter"]
    search_fields = ["subject", "preheader"]
    inlines = [IssueArticleInline]
    fields = ["newsletter", "subject", "preheader", "intro", "status", "scheduled_at", "frozen_at", "public_id"]
    readonly_fields = ["status", "scheduled_at", "frozen_at", "public_id"]
    actions = ["duplicate_selected"]

    def get_queryset(self, request):
        # Delivery counts as subqueries: a second join would multiply the article count.
        def deliveries(**match):
            rows = Delivery.objects.filter(issue=OuterRef("pk"), **match).order_by().values("issue")
            return Subquery(rows.annotate(n=Count("id")).values("n"), output_field=IntegerField())

        return (
            super()
            .get_queryset(request)
            .annotate(
                _article_count=Count("items"),
                _sent=deliveries(status=Delivery.Status.SENT),
                _bounced=deliveries(bounce_kind=Delivery.BounceKind.HARD),
                _complained=deliveries(complained_at__isnull=False),
            )
        )

    @admin.display(description=_("Articles"), ordering="_article_count")
    def article_count(self, obj: Issue) -> int:
        return obj._article_count

    @admin.display(description=_("Sent / bounced / complaints"))
    def delivery_counts(self, obj: Issue) -> str:
        return f"{obj._sent or 0} / {obj._bounced or 0} / {obj._complained or 0}"

    # Read-only once the issue leaves draft: what was (or is being) sent must not change under the archive.
    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and not obj.is_editable:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and not obj.is_editable:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj: Issue, form, change: bool) -> None:
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        issue_renumber(form.instance)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["preview_url"] = reverse("admin:newsletter_issue_preview", args=[obj.pk])
            context["duplicate_url"] = reverse("admin:newsletter_issue_duplicate", args=[obj.pk])
            context["can_duplicate"] = self.has_add_permission(request)
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.action(description=_("Duplicate the selected issues as new drafts"), permissions=["add"])
    def duplicate_selected(self, request, queryset) -> None:
        copies = [issue_duplicate(issue, request.user) for issue in queryset]
        self.message_user(request, _("Created %(n)d draft(s).") % {"n": len(copies)}, messages.SUCCESS)

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/preview/", view(self.preview_view), name=f"{prefix}_preview"),
            path("<path:object_id>/preview/html/", view(self.preview_html_view), name=f"{prefix}_preview_html"),
            path("<path:object_id>/duplicate/", view(self.duplicate_view), name=f"{prefix}_duplicate"),
            *super().get_urls(),
        ]

    def _issue_for_view(self, request: HttpRequest, object_id: str) -> Issue:
        issue = get_object_or_404(Issue.objects.select_related("newsletter"), pk=object_id)
        if not self.has_view_permission(request, issue):
            raise PermissionDenied
        return issue

    def preview_view(self, request: HttpRequest, object_id: str) -> TemplateResponse:
        """Desktop and mobile frames side by side and the text part: the sending path's render and substitution,
        filled with the editor's own preview values."""
        issue = self._issue_for_view(request, object_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": issue,
            "title": _("Preview: %(subject)s") % {"subject": issue.subject},
            "change_url": reverse("admin:newsletter_issue_change", args=[issue.pk]),
        }
        try:
            preview = issue_preview(issue, preview_values(request.user))
        except RenderError as exc:
            context["error"] = exc
        else:
            size = len(preview.html.encode())
            context.update(
                preview=preview,
                html_url=reverse("admin:newsletter_issue_preview_html", args=[issue.pk]),
                html_kb=round(size / 1024, 1),
                clipped=size >= GMAIL_CLIP_BYTES,
            )
        return TemplateResponse(request, "admin/newsletter/issue/preview.html", context)

    @xframe_options_sameorigin
    def preview_html_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The email HTML alone, for the preview's iframes (same-origin framing only)."""
        issue = self._issue_for_view(request, object_id)
        try:
            preview = issue_preview(issue, preview_values(request.user))
        except RenderError as exc:
            return TemplateResponse(request, "admin/newsletter/issue/render_error.html", {"error": exc})
        return HttpResponse(preview.html)

    def duplicate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return require_POST(self._duplicate)(request, object_id)

    def _duplicate(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        issue = self._issue_for_view(request, object_id)
        copy = issue_duplicate(issue, request.user)
        self.message_user(request, _("This is a new draft copied from “%(subject)s”.") % {"subject": issue.subject})
        return HttpResponseRedirect(reverse("admin:newsletter_issue_change", args=[copy.pk]))
