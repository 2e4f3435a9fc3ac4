"""Public pages: the home page's list of newsletters, a newsletter's archive of sent issues, and each issue's web
version ("view in browser")."""

from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import translation

from .models import Issue, Newsletter
from .services.archive import archive_html, archive_issues


def home(request):
    """Every newsletter with its description, a link to its signup page and, when public, to its archive."""
    return render(request, "site/home.html", {"newsletters": Newsletter.objects.order_by("name")})


def archive(request, newsletter: str):
    """The list of sent issues, when the newsletter's archive is public (404 otherwise: it does not exist)."""
    newsletter_obj = get_object_or_404(Newsletter, slug=newsletter)
    if not newsletter_obj.archive_public:
        raise Http404("This newsletter has no public archive.")
    # In the newsletter's language, like its issues (the page lists them; a reader's choice of site language
    # does not translate them).
    with translation.override(newsletter_obj.language):
        response = render(
            request,
            "newsletter/archive.html",
            {"newsletter": newsletter_obj, "issues": archive_issues(newsletter_obj)},
        )
    response["Content-Language"] = newsletter_obj.language
    return response


def issue_page(request, newsletter: str, public_id):
    """The web version of an issue whose sending has started: its frozen render, without anyone's personal links.

    Reachable by its unguessable URL even when the archive is not public, because every email links to it."""
    issue = get_object_or_404(
        Issue.objects.select_related("newsletter"),
        newsletter__slug=newsletter,
        public_id=public_id,
        frozen_at__isnull=False,
    )
    response = HttpResponse(archive_html(issue.frozen_html, issue.newsletter.language))
    response.csp = "email"  # an email as a page: its inline styles and images, no script (config/csp.py)
    response["Content-Language"] = issue.newsletter.language
    if not issue.newsletter.archive_public:
        response["X-Robots-Tag"] = "noindex"
    return response
