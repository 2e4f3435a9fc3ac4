"""Request guards that run before anything reads a body.

- Charset: every body must be UTF-8. A request that names another charset (`charset=latin-1`, `utf-16`, an unknown
  one) or whose form body has percent-encoded bytes that are not UTF-8 gets a plain 400 at once, so no view, CSRF
  check or error page ever decodes it (Django would decode latin-1 into a wrong address, and fail on the rest).
- Public forms (everything but the admin, the API and the ESP webhooks): a body above
  MASTHEAD's PUBLIC_FORM_MAX_BYTES is a 413, a file upload a 400. Their forms are a few short fields; RFC 8058's
  one-click POST may come as multipart, so multipart is read (within the limit) and refused only if it has files.
"""

import codecs
from urllib.parse import unquote_to_bytes

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from newsletter.conf import app_settings

FORM = "application/x-www-form-urlencoded"


def _charset(content_type: str) -> str | None:
    """The charset parameter of a Content-Type, or None."""
    for parameter in content_type.split(";")[1:]:
        name, _sep, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').strip("'")
    return None


def _is_utf8(charset: str) -> bool:
    try:
        return codecs.lookup(charset).name in ("utf-8", "ascii")
    except LookupError:
        return False


def _form_is_utf8(body: bytes) -> bool:
    try:
        unquote_to_bytes(body.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def bad_request(message: str) -> HttpResponse:
    """A plain 400 that needs no template, session or CSRF machinery to render."""
    return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")


class Utf8BodyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            content_type = request.META.get("CONTENT_TYPE", "")
            charset = _charset(content_type)
            if charset is not None and not _is_utf8(charset):
                return bad_request(_("Bad request: send this form as UTF-8."))
            if content_type.split(";")[0].strip().lower() == FORM and not _form_is_utf8(request.body):
                return bad_request(_("Bad request: send this form as UTF-8."))
        return self.get_response(request)


# Where bodies are not public forms: each has its own limits (the admin's imports, the API, ESP payloads).
NOT_PUBLIC_FORMS = ("/admin/", "/api/", "/webhooks/")


class PublicFormLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in ("POST", "PUT", "PATCH") and not request.path.startswith(NOT_PUBLIC_FORMS):
            limit = app_settings.PUBLIC_FORM_MAX_BYTES
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return bad_request(_("Bad request."))
            if length > limit or len(request.body) > limit:
                return HttpResponse(_("This form's data is too large."), status=413, content_type="text/plain")
            if request.META.get("CONTENT_TYPE", "").lower().startswith("multipart/") and request.FILES:
                return bad_request(_("Bad request: this form takes no files."))
        return self.get_response(request)
