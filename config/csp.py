"""Content-Security-Policy on every page outside the admin, and a deploy check on SITE_URL.

- Site pages (signup, confirm, preferences, archive lists, privacy, API docs): scripts, styles, fonts and forms
  from this origin only; images also from any https host (an archive's logos); never framed, no plugins.
- Email HTML served as a page (the web version of an issue, the admin's previews): the email's own inline styles
  and remote images, no script at all, no form, no <base>; framed only by our own admin's preview.

A view marks an email response with `response.csp = "email"` (or "email-framed" for a preview shown in the
admin's iframe). The admin's own pages keep Django's defaults (they use inline scripts).
"""

from django.conf import settings
from django.core import checks
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"

POLICIES = {
    "site": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' https: data:; "
        "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "email": (
        "default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline' https:; font-src https: data:; "
        "form-action 'none'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "email-framed": (
        "default-src 'none'; img-src https: http: data: 'self'; style-src 'unsafe-inline' https:; "
        "font-src https: data:; form-action 'none'; frame-ancestors 'self'; base-uri 'none'; object-src 'none'"
    ),
}


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if HEADER in response:
            return response
        policy = getattr(response, "csp", None)
        if policy is None and request.path.startswith("/admin/"):
            return response
        response[HEADER] = POLICIES[policy or "site"]
        return response


@checks.register(checks.Tags.security, deploy=True)
def site_url_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """SITE_URL goes into every email's List-Unsubscribe and personal links: in production it must be https."""
    if settings.DEBUG or settings.SITE_URL.lower().startswith("https://"):
        return []
    return [
        checks.Warning(
            f"SITE_URL is {settings.SITE_URL!r}, not https, with DEBUG off.",
            hint="Every email's List-Unsubscribe (RFC 8058 needs https) and personal links are built from it; "
            "set SITE_URL=https://…",
            id="masthead.W010",
        )
    ]
