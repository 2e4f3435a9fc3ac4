"""Uploaded images served by the app at MEDIA_URL, so the images in an email work with nothing else set up.

whitenoise serves static files only. This view reads through the default storage (so it works for any backend)
and sends files under images/ only, with a long cache lifetime: every stored name is unique and never reused.
An operator whose proxy or object store serves MEDIA_URL sets SERVE_MEDIA=false and this route is not mounted.
"""

import mimetypes
import posixpath

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest
from django.views.decorators.http import require_GET

SERVED_PREFIX = "images/"
SERVED_TYPES = {"image/jpeg", "image/png", "image/webp", "image/gif"}
ONE_YEAR = 365 * 24 * 3600


@require_GET
def media_file(request: HttpRequest, name: str) -> FileResponse:
    clean = posixpath.normpath(name).lstrip("/")
    content_type = mimetypes.guess_type(clean)[0]
    if clean != name or not clean.startswith(SERVED_PREFIX) or content_type not in SERVED_TYPES:
        raise Http404("No such image.")
    try:
        handle = default_storage.open(clean, "rb")
    except OSError as exc:  # FileNotFoundError included; a suspicious name is Django's own 400
        raise Http404("No such image.") from exc
    response = FileResponse(handle, content_type=content_type)
    response["Cache-Control"] = f"public, max-age={ONE_YEAR}, immutable"
    # An image opened directly must never be treated as a page.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
