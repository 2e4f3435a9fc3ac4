"""Sending controls for the issue admin: confirm and send/schedule, pause, resume, cancel, progress, resend to
missing, test send.

Mixed into IssueAdmin (admin.py) so the compose side and the send side stay in separate modules. Every view that
changes state is POST-only (405 on GET) and checks `newsletter.send_issue` (403 without), except the test send,
which any editor who may change the issue can do. The views parse, call one service, and message the user.
"""

from __future__ import annotations

from datetime import datetime
from functools import wraps

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from .models import Issue
from .services import sending
from .services.composing import issue_checklist

SEND_PERMISSION = "newsletter.send_issue"


def _action(needs_send_permission: bool = True):
    """A state-changing admin view: POST only (405 otherwise, like require_POST), then the explicit permission
    check (403): being staff is not authorisation."""

    def decorate(view):
        @wraps(view)
        def wrapped(self, request: HttpRequest, object_id: str) -> HttpResponse:
            if request.method != "POST":
                return HttpResponseNotAllowed(["POST"])
            if needs_send_permission and not request.user.has_perm(SEND_PERMISSION):
                raise PermissionDenied("You may not send, schedule, pause, resume or cancel issues.")
            return view(self, request, object_id)

        return wrapped

    return decorate


def _page(view):
    """A page: GET (and HEAD) only."""

    @wraps(view)
    def wrapped(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET"])
        return view(self, request, object_id)

    return wrapped


class IssueSendingAdminMixin:
    send_confirm_template = "admin/newsletter/issue/send_confirm.html"
    send_progress_template = "admin/newsletter/issue/send_progress.html"

    # --- URLs ---------------------------------------------------------------------------------------------------

    def get_urls(self):
        urls = super().get_urls()
        view = self.admin_site.admin_view
        info = self.model._meta.app_label, self.model._meta.model_name

        def route(suffix: str, method, name: str):
            return path(f"<path:object_id>/{suffix}", view(method), name=f"{info[0]}_{info[1]}_{name}")

        return [
            route("send/", self.send_confirm_view, "send"),
            route("send/now/", self.send_now_view, "send_now"),
            route("send/schedule/", self.send_schedule_view, "send_schedule"),
            route("send/unschedule/", self.send_unschedule_view, "send_unschedule"),
            route("send/pause/", self.send_pause_view, "send_pause"),
            route("send/resume/", self.send_resume_view, "send_resume"),
            route("send/cancel/", self.send_cancel_view, "send_cancel"),
            route("send/resend/", self.send_resend_view, "send_resend"),
            route("send/test/", self.send_test_view, "send_test"),
            route("progress/", self.send_progress_view, "progress"),
            route("progress.json", self.send_progress_json_view, "progress_json"),
            *urls,
        ]

    def _url(self, name: str, issue: Issue) -> str:
        return reverse(f"admin:newsletter_issue_{name}", args=[issue.pk], current_app=self.admin_site.name)

    # --- the change form shows where to go ------------------------------------------------------------------------

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None:
            fieldsets.append(("Sending", {"fields": ["sending_controls"]}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "sending_controls"] if obj is not None else fields

    @staticmethod
    def _status_line(issue: Issue) -> str:
        return issue.get_status_display()

    def sending_controls(self, obj: Issue) -> str:
        if obj is None or obj.pk is None:
            return "-"
        return format_html(
            '{} · <a href="{}">Send, schedule or test…</a> · <a href="{}">Progress</a>',
            self._status_line(obj),
            self._url("send", obj),
            self._url("progress", obj),
        )

    sending_controls.short_description = "Sending"

    # --- pages (GET) ---------------------------------------------------------------------------------------------

    def _issue(self, request: HttpRequest, object_id: str) -> Issue:
        if not object_id.isdigit():  # <path:object_id> also matches "3/send/…": a 404, never a 500
            raise Http404
        issue = get_object_or_404(Issue.objects.select_related("newsletter"), pk=object_id)
        if not self.has_view_or_change_permission(request, issue):
            raise PermissionDenied
        return issue

    def _context(self, request: HttpRequest, issue: Issue, title: str) -> dict:
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "original": issue,
            "issue": issue,
            "can_send": request.user.has_perm(SEND_PERMISSION),
            "can_test": self.has_change_permission(request, issue),
            "urls": {
                name: self._url(name, issue)
                for name in (
                    "send_now",
                    "send_schedule",
                    "send_unschedule",
                    "send_pause",
                    "send_resume",
                    "send_cancel",
                    "send_resend",
                    "send_test",
                    "progress",
                    "progress_json",
                    "send",
                )
            },
            "change_url": reverse("admin:newsletter_issue_change", args=[issue.pk], current_app=self.admin_site.name),
        }

    @_page
    def send_confirm_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        issue = self._issue(request, object_id)
        context = self._context(request, issue, f"Send “{issue.subject}”")
        context.update(
            recipient_count=sending.issue_recipient_count(issue),
            default_when=(timezone.localtime() + timezone.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            timezone_name=timezone.get_current_timezone_name(),
            user_email=getattr(request.user, "email", ""),
            progress=sending.issue_progress(issue),
            checklist=issue_checklist(issue) if issue.status in (Issue.Status.DRAFT, Issue.Status.SCHEDULED) else None,
        )
        return TemplateResponse(request, self.send_confirm_template, context)

    @_page
    def send_progress_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        issue = self._issue(request, object_id)
        context = self._context(request, issue, f"Send progress: “{issue.subject}”")
        context["progress"] = sending.issue_progress(issue)
        return TemplateResponse(request, self.send_progress_template, context)

    @_page
    def send_progress_json_view(self, request: HttpRequest, object_id: str) -> JsonResponse:
        return JsonResponse(sending.issue_progress(self._issue(request, object_id)))

    # --- actions (POST) ------------------------------------------------------------------------------------------

    def _done(self, request: HttpRequest, issue: Issue, action, success: str, to: str = "progress"):
        try:
            action()
        except sending.SendError as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(self._url("send", issue))
        messages.success(request, success)
        return HttpResponseRedirect(self._url(to, issue))

    @_action()
    def send_now_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        issue = self._issue(request, object_id)
        count = sending.issue_recipient_count(issue)
        return self._done(
            request,
            issue,
            lambda: sending.issue_send_now(issue, user=request.user),
            f"Sending “{issue.subject}” to {count:,} subscribers.",
        )

    @_action()
    def send_schedule_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        issue = self._issue(request, object_id)
        raw = request.POST.get("when", "").strip()
        try:
            when = timezone.make_aware(datetime.fromisoformat(raw)) if raw else None
        except ValueError:
            when = None
        if when is None:
            messages.error(request, f"“{raw}” is not a date and time (expected e.g. 2026-05-04T06:00).")
            return HttpResponseRedirect(self._url("send", issue))
        if (checklist := issue_checklist(issue)).blocked:
            # The start would refuse it at the scheduled time anyway; say so now, not at 6 a.m.
            problems = "; ".join(item.problem or item.label for item in checklist.blocking_items)
            messages.error(request, f"Not scheduled: the pre-send checklist found {problems}.")
            return HttpResponseRedirect(self._url("send", issue))
        return self._done(
            request,
            issue,
            lambda: sending.issue_schedule(issue, when, user=request.user),
            f"Scheduled for {timezone.localtime(when):%Y-%m-%d %H:%M %Z}.",
            to="send",
        )

    @_action()
    def send_unschedule_view(self, request, object_id):
        issue = self._issue(request, object_id)
        return self._done(request, issue, lambda: sending.issue_unschedule(issue), "Unscheduled.", to="send")

    @_action()
    def send_pause_view(self, request, object_id):
        issue = self._issue(request, object_id)
        reason = f"paused by {request.user}"
        return self._done(request, issue, lambda: sending.issue_pause(issue, reason), "Paused; nothing more is sent.")

    @_action()
    def send_resume_view(self, request, object_id):
        issue = self._issue(request, object_id)
        return self._done(request, issue, lambda: sending.issue_resume(issue), "Resumed.")

    @_action()
    def send_cancel_view(self, request, object_id):
        issue = self._issue(request, object_id)
        return self._done(request, issue, lambda: sending.issue_cancel(issue), "Cancelled; nothing more is sent.")

    @_action()
    def send_resend_view(self, request, object_id):
        issue = self._issue(request, object_id)
        return self._done(
            request,
            issue,
            lambda: sending.issue_resend_missing(issue, user=request.user),
            "Resending to those who did not get it.",
        )

    @_action(needs_send_permission=False)
    def send_test_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        issue = self._issue(request, object_id)
        if not self.has_change_permission(request, issue):
            raise PermissionDenied("You may not send tests of this issue.")
        raw = request.POST.get("addresses", "")
        try:
            sent_to = sending.issue_send_test(issue, sending.test_addresses_parse(raw), user=request.user)
        except sending.SendError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Test sent to {', '.join(sent_to)} (subject marked [TEST]).")
        return HttpResponseRedirect(self._url("send", issue))
