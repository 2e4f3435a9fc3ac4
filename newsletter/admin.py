"""The editor's admin: articles (search, filters, preview, import) and issues (compose, reorder, preview,
duplicate; read-only once they leave draft). Sending controls live in admin_sending.py.

Views here are adapters: check the permission, call a service, message the user. Anything that changes state is
POST-only (405 on GET) and checks an explicit permission (403 without it)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Count, Exists, IntegerField, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST
from django_prose_editor.fields import ProseEditorFormField

from . import delivery
from .admin_import import ArticleImportAdminMixin
from .admin_sending import IssueSendingAdminMixin
from .models import ARTICLE_EDITABLE_FIELDS, Article, Delivery, Image, Issue, IssueArticle, Newsletter, Segment
from .services import sending
from .services.blocks import layouts_available
from .services.checklist import GMAIL_CLIP_BYTES
from .services.composing import (
    ComposeError,
    article_sanitize,
    articles_search,
    issue_article_add,
    issue_duplicate,
    issue_preview,
    issue_renumber,
    preview_values,
)
from .services.images import ImageError, image_open, image_upload, media_url
from .services.rendering import RenderError, article_render
from .services.sanitizing import html_sanitize

# What the article editor offers; everything it can produce is also allowed by the sanitiser (sanitizing.py),
# which still cleans what it saves (and Word's markup on the way, pasted.py).
PROSE_EXTENSIONS = {
    "Bold": True,
    "Italic": True,
    "Underline": True,
    "Strike": True,
    "Subscript": True,
    "Superscript": True,
    # The email's own outline uses h1 (masthead) and h2 (headlines): a story's headings sit below.
    "Heading": {"levels": [2, 3, 4]},
    "BulletList": True,
    "OrderedList": True,
    "ListItem": True,
    "Blockquote": True,
    "HorizontalRule": True,
    "HardBreak": True,
    "Link": {"enableTarget": False, "protocols": ["http", "https", "mailto"]},
    "Image": True,
    "Figure": True,
    "Caption": True,
    "OfficePaste": True,
    "HTML": True,
    "History": True,
}


def prose_field(**kwargs) -> ProseEditorFormField:
    return ProseEditorFormField(extensions=PROSE_EXTENSIONS, sanitize=html_sanitize, required=False, **kwargs)


def email_page(html: str) -> HttpResponse:
    """An email's HTML for a preview iframe: its styles and images, no script, framed by the admin only."""
    response = HttpResponse(html)
    response.csp = "email-framed"  # config/csp.py
    return response


class ImageUploadField(forms.FileField):
    """A file field that accepts only what the image service can use, with its reason otherwise."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "widget", forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp,image/gif"})
        )
        super().__init__(**kwargs)

    def clean(self, data, initial=None):
        upload = super().clean(data, initial)
        if upload and hasattr(upload, "read"):
            try:
                image_open(upload.read())
            except ImageError as exc:
                raise forms.ValidationError(str(exc)) from exc
            finally:
                upload.seek(0)
        return upload


def _thumbnail(image: Image | None, width: int = 120) -> str:
    if image is None or not image.email_600:
        return "-"
    return format_html(
        '<img src="{}" alt="{}" style="max-width:{}px;height:auto;border:1px solid #ddd">',
        image.email_600.url,
        image.alt_text,
        width,
    )


# --- Images ----------------------------------------------------------------------------------------------------


class ImageAdminForm(forms.ModelForm):
    upload = ImageUploadField(
        label=_("Image file"), help_text=_("JPEG, PNG, WebP or GIF; resized to 600 and 1,200 px JPEG for email.")
    )

    class Meta:
        model = Image
        fields = ["title", "alt_text"]

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None and not cleaned.get("upload") and "upload" not in self.errors:
            self.add_error("upload", _("Choose an image file to upload."))
        return cleaned


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    form = ImageAdminForm
    list_display = ["preview", "title", "alt_text", "size", "created_at"]
    search_fields = ["title", "alt_text"]
    readonly_fields = ["preview", "size", "email_urls", "uploaded_by", "created_at"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["upload", "title", "alt_text"]
        return ["preview", "title", "alt_text", "size", "email_urls", "uploaded_by", "created_at"]

    @admin.display(description=_("Image"))
    def preview(self, obj: Image) -> str:
        return _thumbnail(obj)

    @admin.display(description=_("Original size"))
    def size(self, obj: Image) -> str:
        return f"{obj.width} × {obj.height} px"

    @admin.display(description=_("Email URLs"))
    def email_urls(self, obj: Image) -> str:
        return format_html(
            "600 px: <code>{}</code><br>1,200 px: <code>{}</code>",
            media_url(obj.email_600.name),
            media_url(obj.email_1200.name),
        )

    def save_model(self, request, obj: Image, form, change: bool) -> None:
        upload = form.cleaned_data.get("upload")
        if change or not upload:
            super().save_model(request, obj, form, change)
            return
        image_upload(upload, alt_text=obj.alt_text, title=obj.title, user=request.user, into=obj)


# --- Newsletters -----------------------------------------------------------------------------------------------


def _editable_fields(model) -> list[str]:
    return [f.name for f in model._meta.get_fields() if f.concrete and f.editable and not f.auto_created]


class NewsletterAdminForm(forms.ModelForm):
    template = forms.ChoiceField(label=_("Layout"), help_text=_("The email layout, under templates/email/."))
    logo_upload = ImageUploadField(label=_("Upload a new logo"), help_text=_("Replaces the logo on save."))

    class Meta:
        model = Newsletter
        fields = _editable_fields(Newsletter)
        widgets = {"accent_colour": forms.TextInput(attrs={"type": "color"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        layouts = layouts_available()
        current = self.instance.template if self.instance.pk else "default"
        self.fields["template"].choices = [(name, name) for name in dict.fromkeys([*layouts, current])]


@admin.register(Newsletter)
class NewsletterAdmin(admin.ModelAdmin):
    form = NewsletterAdminForm
    list_display = ["name", "slug", "from_email", "template", "archive_public", "engagement_report"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["logo"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "description", "language", "archive_public"]}),
        (_("Sender"), {"fields": ["from_name", "from_email", "reply_to"]}),
        (_("Look"), {"fields": ["template", "logo", "logo_upload", "accent_colour", "header_text", "footer_text"]}),
        (_("Legal"), {"fields": ["postal_address"]}),
        (_("Engagement"), {"fields": ["tracking_mode", "tracking_pixel"]}),
    ]

    @admin.display(description=_("Engagement"))
    def engagement_report(self, obj: Newsletter) -> str:
        return format_html('<a href="{}">{}</a>', reverse("engagement_admin:newsletter", args=[obj.pk]), _("Report"))

    def get_fieldsets(self, request, obj=None):
        # A field added to the model later (and not placed above) still shows, under "More".
        placed = {name for _title, options in self.fieldsets for name in options["fields"]}
        rest = [name for name in _editable_fields(Newsletter) if name not in placed]
        return [*self.fieldsets, (_("More"), {"fields": rest})] if rest else self.fieldsets

    def save_model(self, request, obj: Newsletter, form, change: bool) -> None:
        if upload := form.cleaned_data.get("logo_upload"):
            obj.logo = image_upload(upload, alt_text=obj.name, title=f"{obj.name} logo", user=request.user)
        super().save_model(request, obj, form, change)

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
    body_html = prose_field(label=_("Body"), help_text=_("The rest of the story."))
    commentary_html = prose_field(label=_("Commentary"))
    body_markdown = forms.CharField(
        label=_("Body in Markdown"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 80}),
        help_text=_(
            "Optional: write the body in Markdown instead. The Markdown is kept, and the body is generated from it "
            "on every save; empty this box to edit the body in the editor again."
        ),
    )
    image_upload = ImageUploadField(
        label=_("Upload an image"), help_text=_("Becomes the article's image (resized for email) on save.")
    )

    class Meta:
        model = Article
        fields = [*ARTICLE_EDITABLE_FIELDS, "image", "body_markdown"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.body_markdown.strip():
            # The body is generated from the Markdown on every save: shown, not edited, so nothing typed is lost.
            self.fields["body_html"] = forms.CharField(
                label=_("Body (generated from the Markdown below)"),
                required=False,
                disabled=True,
                widget=forms.Textarea(attrs={"rows": 6, "cols": 80, "readonly": True}),
                help_text=_("Edit the Markdown; empty it to write the body in the editor from the next save on."),
            )


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
    autocomplete_fields = ["image"]
    fieldsets = [
        (None, {"fields": ["headline", "slug", "dek", "byline", "section", "tags", "published_at"]}),
        (
            _("Links and image"),
            {"fields": ["canonical_url", "guid", "image", "image_upload", "image_url", "image_alt"]},
        ),
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
        if upload := form.cleaned_data.get("image_upload"):
            obj.image = image_upload(upload, alt_text=obj.image_alt, title=obj.headline, user=request.user)
        article_sanitize(obj)
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
            return email_page(self._render(article).html)
        except RenderError as exc:
            return TemplateResponse(request, "admin/newsletter/issue/render_error.html", {"error": exc})


# --- Issues ----------------------------------------------------------------------------------------------------


class IssueArticleInline(admin.TabularInline):
    """The issue's articles in order. Rows follow the issue: editable while it is a draft by anyone who may change
    the issue, read-only after."""

    model = IssueArticle
    autocomplete_fields = ["article"]
    fields = ["position", "section", "article", "blurb"]
    extra = 0
    classes = ["mh-reorderable"]

    class Media:
        js = ["newsletter/admin/issue_reorder.js"]
        css = {"all": ["newsletter/admin/issue_reorder.css"]}

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "blurb":
            kwargs["widget"] = forms.Textarea(attrs={"rows": 2, "cols": 50})
        if db_field.name == "section":
            kwargs["widget"] = forms.TextInput(attrs={"size": 14})
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
    list_display = [
        "subject", "newsletter", "kind", "status", "article_count", "delivery_counts", "engagement_report",
        "scheduled_at", "created_at",
    ]  # fmt: skip
    list_filter = ["status", "kind", "newsletter"]
    search_fields = ["subject", "preheader"]
    inlines = [IssueArticleInline]
    fieldsets = [
        (None, {"fields": ["newsletter", "kind", "segment", "subject", "preheader", "intro", "status", "scheduled_at",
                           "frozen_at", "public_id"]}),
        (_("Canary"), {"fields": ["canary_percent", "canary_minimum", "canary_hold_minutes"],
                       "classes": ["collapse"]}),
        (_("A/B subjects"), {"fields": ["subject_b", "subject_c", "subject_d", "ab_test_percent",
                                        "ab_wait_minutes"], "classes": ["collapse"]}),
        (_("Delivery time"), {"fields": ["local_time", "window_start", "window_end"], "classes": ["collapse"],
                              "description": _("In each reader's own time zone (from the signup page or the import; "
                                               "the site's time zone when unknown). Leave empty to send at once.")}),
        (_("Sponsor"), {"fields": ["sponsor_name", "sponsor_url", "sponsor_text", "sponsor_image"],
                        "classes": ["collapse"]}),
    ]  # fmt: skip
    readonly_fields = ["status", "scheduled_at", "frozen_at", "public_id"]
    autocomplete_fields = ["sponsor_image", "segment"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions = ["duplicate_selected", "welcome_start_selected"]

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

    @admin.display(description=_("Engagement"))
    def engagement_report(self, obj: Issue) -> str:
        if obj.started_at is None:
            return "–"
        return format_html('<a href="{}">{}</a>', reverse("engagement_admin:issue", args=[obj.pk]), _("Report"))

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
            context["ab"] = delivery.ab_report(obj)
            if self.has_change_permission(request, obj):
                context["article_search_url"] = reverse("admin:newsletter_issue_article_search", args=[obj.pk])
                context["article_add_url"] = reverse("admin:newsletter_issue_article_add", args=[obj.pk])
        return super().render_change_form(request, context, add, change, form_url, obj)

    def has_send_permission(self, request) -> bool:
        return request.user.has_perm("newsletter.send_issue")

    @admin.action(description=_("Turn on as the newsletter's welcome email"), permissions=["send"])
    def welcome_start_selected(self, request, queryset) -> None:
        for issue in queryset.order_by("pk"):
            try:
                sending.issue_welcome_start(issue, request.user)
            except sending.SendError as exc:
                self.message_user(request, f"{issue}: {exc}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    _("“%(issue)s” now greets every reader who confirms %(newsletter)s.")
                    % {"issue": issue, "newsletter": issue.newsletter},
                    messages.SUCCESS,
                )

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
            path("<path:object_id>/articles/search/", view(self.article_search_view), name=f"{prefix}_article_search"),
            path("<path:object_id>/articles/add/", view(self.article_add_view), name=f"{prefix}_article_add"),
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
        return email_page(preview.html)

    def duplicate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return require_POST(self._duplicate)(request, object_id)

    def _duplicate(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        issue = self._issue_for_view(request, object_id)
        copy = issue_duplicate(issue, request.user)
        self.message_user(request, _("This is a new draft copied from “%(subject)s”.") % {"subject": issue.subject})
        return HttpResponseRedirect(reverse("admin:newsletter_issue_change", args=[copy.pk]))

    def _issue_to_change(self, request: HttpRequest, object_id: str) -> Issue:
        issue = self._issue_for_view(request, object_id)
        if not self.has_change_permission(request, issue):
            raise PermissionDenied
        return issue

    def article_search_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Articles matching `q` that are not in the issue yet, each with an Add button. With `fragment=1` only the
        result list, which the issue page's search box puts under itself."""
        issue = self._issue_to_change(request, object_id)
        query = request.GET.get("q", "").strip()[:200]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": issue,
            "title": _("Add articles to “%(subject)s”") % {"subject": issue.subject},
            "query": query,
            "results": articles_search(query, issue=issue) if query else [],
            "add_url": reverse("admin:newsletter_issue_article_add", args=[issue.pk]),
            "search_url": reverse("admin:newsletter_issue_article_search", args=[issue.pk]),
            "change_url": reverse("admin:newsletter_issue_change", args=[issue.pk]),
        }
        template = "_article_results.html" if request.GET.get("fragment") else "article_search.html"
        return TemplateResponse(request, f"admin/newsletter/issue/{template}", context)

    def article_add_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return require_POST(self._article_add)(request, object_id)

    def _article_add(self, request: HttpRequest, object_id: str) -> HttpResponse:
        issue = self._issue_to_change(request, object_id)
        change_url = reverse("admin:newsletter_issue_change", args=[issue.pk])
        article = Article.objects.filter(pk=request.POST.get("article", "")).first()
        if article is None:
            self.message_user(request, _("That article does not exist (any more)."), messages.ERROR)
            return HttpResponseRedirect(change_url)
        section = request.POST.get("section")
        try:
            item = issue_article_add(issue, article, section=section if section is not None else None)
        except ComposeError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            where = _(" under “%(s)s”") % {"s": item.section} if item.section else ""
            self.message_user(request, _("Added “%(h)s”%(where)s.") % {"h": article.headline, "where": where})
        return HttpResponseRedirect(change_url)


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    """Saved audiences; the member count is who an issue sent to the segment now would reach."""

    list_display = ["name", "newsletter", "member_count"]
    list_filter = ["newsletter"]
    search_fields = ["name"]
    filter_horizontal = ["tags_any", "tags_none"]

    @admin.display(description=_("Mailable members now"))
    def member_count(self, segment: Segment) -> int:
        return delivery.mailable_subscribers(segment.newsletter_id, delivery.segment_rules(segment)).count()
