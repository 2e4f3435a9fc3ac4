"""Request guards that run before anything reads a body.

- Charset: every body must be UTF-8. A request that names another charset (`charset=latin-1`, `utf-16`, an unknown
  one) or whose form body has percent-encoded bytes that are not UTF-8 gets a plain 400 at once, so no view, CSRF
  check or error page ever decodes it (Django would decode latin-1 into a wrong address, and fail on the rest).
"""

import codecs
from urllib.parse import unquote_to_bytes

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

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
