"""The engagement report in the admin: one page per issue, a newsletter overview (its last ten issues side by
side), and the aggregates as CSV. Read-only pages, for staff who may view issues; nothing here changes state."""

from __future__ import annotations

import csv

from django.contrib import admin
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from engagement import charts
from engagement.services.report import issue_report, newsletter_overview
from newsletter import delivery
from newsletter.models import Issue, Newsletter

SERIES = [(gettext_lazy("Human"), "human"), (gettext_lazy("Machine"), "machine")]


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def issue_page(request: HttpRequest, issue_id: int) -> HttpResponse:
    issue = get_object_or_404(Issue.objects.select_related("newsletter"), pk=issue_id)
    report = issue_report(issue)
    activity = charts.horizontal(
        _("Opens and clicks, human and machine"),
        [
            (_("Opens"), [report.human_opens, report.machine_opens]),
            (_("Clicks"), [report.human_clicks, report.machine_clicks]),
        ],
        SERIES,
    )
    stories = charts.horizontal(
        _("Clicks per story"), [(s.story, [s.human, s.machine]) for s in report.stories], SERIES
    )
    timeline = charts.columns(
        _("The first 48 hours: clicks and opens per hour"),
        [(str(h.hour) if h.hour < 48 else "48+", [h.human_clicks + h.human_opens, h.machine]) for h in report.timeline],
        SERIES,
        every=6,
    )
    context = {
        **admin.site.each_context(request),
        "title": _("Engagement: %(subject)s") % {"subject": issue.frozen_subject or issue.subject},
        "issue": issue,
        "report": report,
        "activity": activity,
        "stories_chart": stories,
        "timeline": timeline,
        "click_rate": _percent(report.click_rate),
        "machine_share": _percent(report.machine_share),
        "variants": sorted(report.variants.items()),
        "ab": delivery.ab_report(issue),  # the subjects of an A/B test and the sentence on its significance
    }
    return render(request, "engagement/issue_report.html", context)


def newsletter_page(request: HttpRequest, newsletter_id: int) -> HttpResponse:
    newsletter = get_object_or_404(Newsletter, pk=newsletter_id)
    summaries = newsletter_overview(newsletter)
    chart = charts.columns(
        _("Human clicks per 1,000 delivered, last ten issues"),
        [(str(i + 1), [round(1000 * (s.click_rate or 0)), 0]) for i, s in enumerate(summaries)],
        SERIES,
    )
    rows = [(i + 1, s, _percent(s.click_rate)) for i, s in enumerate(summaries)]
    context = {
        **admin.site.each_context(request),
        "title": _("Engagement: %(newsletter)s") % {"newsletter": newsletter.name},
        "newsletter": newsletter,
        "rows": rows,
        "chart": chart,
    }
    return render(request, "engagement/newsletter_report.html", context)


def issue_csv(request: HttpRequest, issue_id: int) -> HttpResponse:
    issue = get_object_or_404(Issue, pk=issue_id)
    report = issue_report(issue)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="engagement-issue-{issue.pk}.csv"'
    out = csv.writer(response)
    out.writerow(["section", "key", "label", "url", "story", "human", "machine", "unique"])
    for name, value in [
        ("delivered", report.delivered), ("failed", report.failed), ("bounced_hard", report.bounced_hard),
        ("bounced_soft", report.bounced_soft), ("complaints", report.complaints),
        ("unsubscribes", report.unsubscribes),
    ]:  # fmt: skip
        out.writerow(["summary", name, "", "", "", value, "", ""])
    for name, value in report.opens.items():
        out.writerow(
            ["opens", name, "", "", "", value if name == "human" else "", "" if name == "human" else value, ""]
        )
    for link in report.links:
        unique = "" if link.unique is None else link.unique
        out.writerow(["link", link.number, link.label, link.url, link.story, link.human, link.machine, unique])
    for story in report.stories:
        out.writerow(["story", "", "", "", story.story, story.human, story.machine, ""])
    for hour in report.timeline:
        out.writerow(["hour", hour.hour, "", "", "", hour.human_clicks + hour.human_opens, hour.machine, ""])
    for variant, counts in sorted(report.variants.items()):
        out.writerow(["variant", variant, "delivered", "", "", counts.delivered, "", ""])
        out.writerow(["variant", variant, "clicks", "", "", counts.human_clicks, counts.machine_clicks,
                      "" if counts.unique_clicks is None else counts.unique_clicks])  # fmt: skip
    return response


_may_view = permission_required("newsletter.view_issue", raise_exception=True)

urlpatterns = [
    path("issue/<int:issue_id>/", admin.site.admin_view(_may_view(issue_page)), name="issue"),
    path("issue/<int:issue_id>/csv/", admin.site.admin_view(_may_view(issue_csv)), name="issue_csv"),
    path("newsletter/<int:newsletter_id>/", admin.site.admin_view(_may_view(newsletter_page)), name="newsletter"),
]
