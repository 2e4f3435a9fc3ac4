"""Admin for API tokens (shown once at creation, revocable) and webhooks (endpoints, the outbox, the delivery
log with a replay button). Adapters only: each action checks a permission and calls a service."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from api.models import EVENT_TYPES, ApiToken, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from api.services.tokens import api_token_issue, api_token_revoke
from api.webhooks.delivery import (
    delivery_replay,
    endpoint_disable,
    endpoint_enable,
    endpoint_rotate_secret,
)
from newsletter.conf import app_settings
from newsletter.services.importing import url_refusal

# --- API tokens -------------------------------------------------------------------------------------------------


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "user__username", "prefix"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke_selected"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "name"]
        return ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is None else ["user", *self.readonly_fields]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # A token acts as its user: only a superuser may make one for somebody else (no escalation by token).
        if db_field.name == "user" and not request.user.is_superuser:
            kwargs["queryset"] = get_user_model().objects.filter(pk=request.user.pk)
            kwargs["initial"] = request.user.pk
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj: ApiToken, form, change: bool) -> None:
        if change:
            obj.save(update_fields=["name"])
            return
        if obj.user_id != request.user.pk and not request.user.is_superuser:
            raise PermissionDenied
        obj._plaintext = api_token_issue(obj)

    def response_add(self, request, obj: ApiToken, post_url_continue=None):
        """Show the token once, on this page: it is not stored and not put into a message or cookie."""
        context = {
            **self.admin_site.each_context(request),
            "title": _("API token created"),
            "opts": self.model._meta,
            "token": obj,
            "plaintext": getattr(obj, "_plaintext", ""),
            "api_docs_url": "/api/v1/docs",
        }
        return TemplateResponse(request, "admin/api/apitoken/created.html", context)

    @admin.action(description=_("Revoke selected tokens"), permissions=["change"])
    def revoke_selected(self, request, queryset):
        count = sum(api_token_revoke(token) for token in queryset)
        self.message_user(request, _("%(n)d token(s) revoked.") % {"n": count}, messages.SUCCESS)


# --- Webhook endpoints ------------------------------------------------------------------------------------------


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        choices=EVENT_TYPES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every event type."),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "event_types"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        refusal = url_refusal(url, allow_private=app_settings.WEBHOOK_ALLOW_PRIVATE_URLS)
        if refusal:
            raise forms.ValidationError(
                _("Masthead will not send requests to this URL: %(why)s. Webhooks go to public addresses only "
                  "(set WEBHOOK_ALLOW_PRIVATE_URLS=true on a closed network).") % {"why": refusal}
            )  # fmt: skip
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "description", "is_active", "types", "failing_since", "disabled_reason"]
    list_filter = ["is_active"]
    readonly_fields = [
        "secret", "previous_secret_until", "is_active", "disabled_at", "disabled_reason", "failing_since", "created_at",
    ]  # fmt: skip
    actions = ["enable_selected", "disable_selected", "rotate_secret_selected"]

    def get_fields(self, request, obj=None):
        fields = ["url", "description", "event_types"]
        return fields if obj is None else [*fields, *self.readonly_fields]

    @admin.display(description=_("Event types"))
    def types(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.event_types) if obj.event_types else _("all")

    def _notice_disabled(self, request) -> None:
        for endpoint in WebhookEndpoint.objects.filter(is_active=False).exclude(disabled_reason=""):
            messages.warning(
                request,
                _("Webhooks to %(url)s are disabled since %(when)s: %(why)s Fix the receiver, then enable it "
                  "(events within their retry window are sent then).")
                % {"url": endpoint.url, "when": f"{endpoint.disabled_at:%Y-%m-%d %H:%M}",
                   "why": endpoint.disabled_reason},
            )  # fmt: skip

    def changelist_view(self, request, extra_context=None):
        self._notice_disabled(request)
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "GET":
            self._notice_disabled(request)
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description=_("Enable (resume sending)"), permissions=["change"])
    def enable_selected(self, request, queryset):
        for endpoint in queryset:
            endpoint_enable(endpoint)
        self.message_user(request, _("%(n)d endpoint(s) enabled.") % {"n": queryset.count()}, messages.SUCCESS)

    @admin.action(description=_("Disable"), permissions=["change"])
    def disable_selected(self, request, queryset):
        count = sum(endpoint_disable(e, f"Disabled by {request.user}.") for e in queryset)
        self.message_user(request, _("%(n)d endpoint(s) disabled.") % {"n": count}, messages.SUCCESS)

    @admin.action(description=_("Rotate secret (the old one keeps signing for 24 hours)"), permissions=["change"])
    def rotate_secret_selected(self, request, queryset):
        for endpoint in queryset:
            endpoint_rotate_secret(endpoint)
        self.message_user(
            request,
            _("New secrets made; requests carry a signature with the old and the new secret for 24 hours."),
            messages.SUCCESS,
        )


# --- The outbox and the delivery log ----------------------------------------------------------------------------


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class DeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ["endpoint", "status", "attempts", "last_status_code", "next_attempt_at", "delivered_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["type", "msg_id", "created_at"]
    list_filter = ["type"]
    search_fields = ["msg_id"]
    fields = ["type", "msg_id", "created_at", "body"]
    readonly_fields = fields
    inlines = [DeliveryInline]


class AttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ["number", "started_at", "duration_ms", "status_code", "error", "response_excerpt"]
    readonly_fields = fields
    verbose_name_plural = _("Delivery log")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["event_type", "msg_id", "endpoint", "status", "attempts", "last_status_code", "next_attempt_at",
                    "delivered_at"]  # fmt: skip
    list_filter = ["status", "endpoint", "event__type"]
    search_fields = ["event__msg_id"]
    list_select_related = ["event", "endpoint"]
    fields = ["event", "endpoint", "status", "attempts", "next_attempt_at", "last_status_code", "last_error",
              "delivered_at", "created_at"]  # fmt: skip
    readonly_fields = fields
    inlines = [AttemptInline]
    actions = ["replay_selected"]
    change_form_template = "admin/api/webhookdelivery/change_form.html"

    @admin.display(description=_("Event"), ordering="event__type")
    def event_type(self, obj: WebhookDelivery) -> str:
        return obj.event.type

    @admin.display(description=_("webhook-id"))
    def msg_id(self, obj: WebhookDelivery) -> str:
        return obj.event.msg_id

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm("api.change_webhookdelivery")

    def get_urls(self):
        return [
            path(
                "<path:object_id>/replay/",
                self.admin_site.admin_view(require_POST(self.replay_view)),
                name="api_webhookdelivery_replay",
            ),
            *super().get_urls(),
        ]

    def replay_view(self, request: HttpRequest, object_id: str):
        if not self.has_replay_permission(request):
            raise PermissionDenied
        delivery = get_object_or_404(WebhookDelivery, pk=object_id)
        self._replay(request, [delivery])
        return HttpResponseRedirect(reverse("admin:api_webhookdelivery_change", args=[delivery.pk]))

    def _replay(self, request, deliveries) -> None:
        replayed = sum(delivery_replay(d) for d in deliveries)
        if replayed:
            self.message_user(
                request, _("%(n)d delivery(ies) queued again, with the same webhook-id.") % {"n": replayed}
            )
        if replayed < len(deliveries):
            self.message_user(
                request,
                _("%(n)d not replayed: the endpoint is disabled (enable it first) or the delivery is in flight.")
                % {"n": len(deliveries) - replayed},
                messages.WARNING,
            )

    @admin.action(description=_("Replay (send again with the same webhook-id)"), permissions=["replay"])
    def replay_selected(self, request, queryset):
        self._replay(request, list(queryset))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["replay_url"] = reverse("admin:api_webhookdelivery_replay", args=[obj.pk])
            context["can_replay"] = self.has_replay_permission(request)
        return super().render_change_form(request, context, add, change, form_url, obj)
