from django.http import HttpResponse
from django.shortcuts import get_object_or_404

from .models import Issue


def issue_page(request, newsletter: str, public_id):
    """The web version of a sent issue: its frozen render, without anyone's personal links."""
    issue = get_object_or_404(Issue, newsletter__slug=newsletter, public_id=public_id, frozen_at__isnull=False)
    return HttpResponse(issue.frozen_html)
