"""Admin: adapters that parse, check a permission, call a service and tell the operator what happened.

Status changes go through the services (so the ledger records them); the admin never edits status fields
directly, never adds subscribers one by one (import them) and never deletes them (erase them)."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from newsletter.conf import app_settings
from newsletter.models import Newsletter

from .models import ConsentEvent, MailEvent, QuarantinedMail, Subscriber, Subscription, Suppression, Tag
from .services.exporting import subscribers_csv, subscribers_for_export
from .services.importing import subscribers_import
from .services.privacy import subscriber_erase
from .services.suppression import address_suppress
from .services.tags import TagError, subscribers_tag, subscribers_untag
from .services.unsubscribe import subscriber_unsubscribe


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class SubscriptionInline(ReadOnlyInline):
    model = Subscription
    fields = ["newsletter", "status", "created_at", "updated_at"]
    readonly_fields = fields


class ConsentEventInline(ReadOnlyInline):
    model = ConsentEvent
    fields = ["created_at", "kind", "source", "newsletter", "policy_version", "ip_address", "detail"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]
    verbose_name_plural = _("Consent history")


class ImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"), help_text=_("A header row with an 'email' column (and optional 'name').")
    )
    newsletter = forms.ModelChoiceField(queryset=Newsletter.objects.all())
    consent = forms.CharField(
        label=_("How did these people consent?"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Recorded in the consent ledger with every imported person."),
    )


class SubscriberActionForm(ActionForm):
    tag = forms.CharField(label=_("Tag"), required=False, max_length=64, help_text=_("For the tag actions."))


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    list_display = ["email", "name", "status", "source", "created_at", "confirmed_at"]
    list_filter = ["status", "subscriptions__newsletter", "source", "tag_links__tag", "created_at"]
    search_fields = ["email", "name"]
    date_hierarchy = "created_at"
    fields = [
        "email", "name", "status", "source", "time_zone", "soft_bounces", "created_at", "confirmed_at", "updated_at",
    ]  # fmt: skip
    readonly_fields = [
        "email", "status", "source", "time_zone", "soft_bounces", "created_at", "confirmed_at", "updated_at",
    ]  # fmt: skip
    inlines = [SubscriptionInline, ConsentEventInline]
    actions = [
        "tag_selected", "untag_selected", "unsubscribe_selected", "suppress_selected", "export_selected",
        "erase_selected",
    ]  # fmt: skip
    action_form = SubscriberActionForm
    change_list_template = "admin/subscribers/subscriber/change_list.html"

    def get_queryset(self, request):
        return super().get_queryset(request).distinct()  # the newsletter filter joins subscriptions

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_suppress_permission(self, request) -> bool:
        return request.user.has_perm("subscribers.suppress_subscriber")

    def has_export_permission(self, request) -> bool:
        return request.user.has_perm("subscribers.export_subscriber")

    def has_erase_permission(self, request) -> bool:
        return request.user.has_perm("subscribers.erase_subscriber")

    def has_import_permission(self, request) -> bool:
        return request.user.has_perm("subscribers.import_subscribers")

    @admin.action(description=_("Add the tag"), permissions=["change"])
    def tag_selected(self, request, queryset):
        self._tag_action(request, queryset, subscribers_tag, _("Tag “%(tag)s” added to %(n)d subscriber(s)."))

    @admin.action(description=_("Remove the tag"), permissions=["change"])
    def untag_selected(self, request, queryset):
        self._tag_action(request, queryset, subscribers_untag, _("Tag “%(tag)s” removed from %(n)d subscriber(s)."))

    def _tag_action(self, request, queryset, service, done) -> None:
        name = request.POST.get("tag", "").strip()
        if not name:
            self.message_user(request, _("Type the tag's name in the Tag box next to the action."), messages.ERROR)
            return
        try:
            count = service(queryset.values_list("pk", flat=True), name)
        except TagError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, done % {"tag": name, "n": count}, messages.SUCCESS)

    @admin.action(description=_("Unsubscribe from everything"), permissions=["suppress"])
    def unsubscribe_selected(self, request, queryset):
        changed = sum(
            subscriber_unsubscribe(s, None, source=ConsentEvent.Source.ADMIN) for s in queryset.order_by("pk")
        )
        self.message_user(request, _("%(n)d subscriber(s) unsubscribed.") % {"n": changed}, messages.SUCCESS)

    @admin.action(description=_("Suppress (never email again)"), permissions=["suppress"])
    def suppress_selected(self, request, queryset):
        count = 0
        for subscriber in queryset.order_by("pk"):
            address_suppress(
                subscriber.email, Suppression.Reason.MANUAL, ConsentEvent.Source.ADMIN, f"by {request.user}"
            )
            count += 1
        self.message_user(request, _("%(n)d address(es) suppressed.") % {"n": count}, messages.SUCCESS)

    @admin.action(description=_("Export as CSV"), permissions=["export"])
    def export_selected(self, request, queryset):
        response = StreamingHttpResponse(subscribers_csv(subscribers_for_export(queryset)), content_type="text/csv")
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="subscribers-{stamp}.csv"'
        return response

    @admin.action(description=_("Erase personal data (asks first)"), permissions=["erase"])
    def erase_selected(self, request, queryset):
        if request.POST.get("confirm") == "yes":
            count = 0
            for subscriber in queryset.order_by("pk"):
                subscriber_erase(subscriber, source=ConsentEvent.Source.ADMIN, detail=f"by {request.user}")
                count += 1
            self.message_user(request, _("%(n)d subscriber(s) erased.") % {"n": count}, messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Erase these subscribers?"),
            "opts": self.model._meta,
            "subscribers": queryset,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/subscribers/subscriber/erase_confirmation.html", context)

    # --- CSV import ---------------------------------------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("import/", wrap(self.import_view), name="subscribers_subscriber_import"),
            path("import/run/", wrap(self.import_run_view), name="subscribers_subscriber_import_run"),
            *super().get_urls(),
        ]

    def _import_context(self, request, form, report=None):
        return {
            **self.admin_site.each_context(request),
            "title": _("Import subscribers"),
            "opts": self.model._meta,
            "form": form,
            "report": report,
            "shown_rejects": report.rejected[:5000] if report else [],
            "action": reverse("admin:subscribers_subscriber_import_run"),
        }

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_import_permission(request):
            raise PermissionDenied
        return render(request, "admin/subscribers/subscriber/import.html", self._import_context(request, ImportForm()))

    def import_run_view(self, request: HttpRequest) -> HttpResponse:
        return require_POST(self._import_run)(request)

    def _import_run(self, request: HttpRequest) -> HttpResponse:
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = ImportForm(request.POST, request.FILES)
        if not form.is_valid():
            return render(
                request, "admin/subscribers/subscriber/import.html", self._import_context(request, form), status=400
            )
        upload = form.cleaned_data["file"]
        report = subscribers_import(
            upload.file,  # streamed: Django spools big uploads to a temporary file
            form.cleaned_data["newsletter"],
            source_detail=f"admin upload {upload.name} by {request.user}"[:250],
            consent_text=form.cleaned_data["consent"],
            policy_version=app_settings.POLICY_VERSION,
        )
        return render(
            request, "admin/subscribers/subscriber/import.html", self._import_context(request, ImportForm(), report)
        )


class AppendOnlyAdmin(admin.ModelAdmin):
    """Rows nobody may add, change or delete through the admin (superusers included)."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ConsentEvent)
class ConsentEventAdmin(AppendOnlyAdmin):
    list_display = ["created_at", "kind", "source", "subscriber", "newsletter", "policy_version", "ip_address"]
    list_filter = ["kind", "source", "newsletter", "created_at"]
    search_fields = ["subscriber__email", "detail"]
    list_select_related = ["subscriber", "newsletter"]


@admin.register(Suppression)
class SuppressionAdmin(AppendOnlyAdmin):
    list_display = ["email_hash", "reason", "created_at"]
    list_filter = ["reason"]


@admin.register(MailEvent)
class MailEventAdmin(AppendOnlyAdmin):
    list_display = ["created_at", "kind", "esp", "recipient", "issue", "processed_at"]
    list_filter = ["kind", "esp"]
    search_fields = ["recipient", "message_id"]
    list_display += ["description"]


@admin.register(QuarantinedMail)
class QuarantinedMailAdmin(AppendOnlyAdmin):
    """Mail that came back and could not be acted on, with the reason. Operators read it here (and may delete
    what they have dealt with); it prunes itself by age and count (INBOUND_QUARANTINE_DAYS / _MAX)."""

    list_display = ["received_at", "reason", "door", "envelope_recipient", "subject", "size"]
    list_filter = ["door", "received_at"]
    search_fields = ["reason", "subject", "envelope_recipient", "envelope_sender", "message_id"]
    fields = ["received_at", "reason", "door", "envelope_sender", "envelope_recipient", "subject", "message_id",
              "size", "truncated", "message"]  # fmt: skip
    readonly_fields = fields

    @admin.display(description=_("Message (as received)"))
    def message(self, obj: QuarantinedMail) -> str:
        text = bytes(obj.raw).decode("utf-8", "replace")
        return format_html('<pre style="white-space:pre-wrap;max-height:40em;overflow:auto">{}</pre>', text)

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("subscribers.delete_quarantinedmail")


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "subscriber_count"]
    search_fields = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(subscriber_count=Count("subscriber_links"))

    @admin.display(description=_("Subscribers"), ordering="subscriber_count")
    def subscriber_count(self, tag) -> int:
        return tag.subscriber_count
