"""django-anymail's tracking webhooks for Amazon SES, Postmark, Mailgun and SendGrid, mounted under
/webhooks/anymail/<esp>/tracking/ (add an ESP to ESPS once its bounce classification in bounces.py is checked).

Anymail accepts unauthenticated webhooks (with a warning) when no WEBHOOK_SECRET is set; a forged "complaint"
would then suppress any address and pause any issue. So these URLs answer 404 until the operator sets the
basic-auth secret (ANYMAIL="WEBHOOK_SECRET=user:password" in the environment, the same user:password put into
the ESP's webhook URL), and Mailgun's additionally until its signing key is set (MAILGUN_WEBHOOK_SIGNING_KEY).

Before anymail sees a request, the guard authenticates it (basic auth, then the ESP's own signature: SNS message
signatures for SES, a fresh, once-only signature block for Mailgun) and checks the body's shape; anything
malformed, or failing while anymail parses it, answers 400 and records nothing (the recording is rolled back).
"""

import json
import logging
from functools import wraps

from anymail import urls as anymail_urls
from anymail.exceptions import AnymailError
from anymail.utils import get_anymail_setting, get_request_basic_auth
from django.core.cache import cache
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.urls import URLPattern
from django.utils.crypto import constant_time_compare

from .services.esp_auth import WebhookRefused, mailgun_verify, sns_verify

logger = logging.getLogger(__name__)

ESPS = ("amazon_ses", "postmark", "mailgun", "sendgrid")
EXTRA_KEYS = {"mailgun": ("webhook_signing_key", "api_key")}


def _configured(esp: str) -> bool:
    if not get_anymail_setting("webhook_secret", default=None):
        return False
    keys = EXTRA_KEYS.get(esp)
    return not keys or any(get_anymail_setting(k, esp_name=esp, default=None, allow_bare=True) for k in keys)


def _basic_auth_ok(request: HttpRequest) -> bool:
    allowed = get_anymail_setting("webhook_secret", default=[])
    allowed = [allowed] if isinstance(allowed, str) else list(allowed)
    given = get_request_basic_auth(request) or ""
    return any(constant_time_compare(given, secret) for secret in allowed)


def _payload(request: HttpRequest, esp: str) -> object:
    """The body as JSON of the shape the ESP sends. Raises WebhookRefused."""
    try:
        payload = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookRefused("body is not UTF-8 JSON") from exc
    if esp == "sendgrid":
        if not isinstance(payload, list) or not all(isinstance(item, dict) for item in payload):
            raise WebhookRefused("SendGrid sends a list of event objects")
    elif not isinstance(payload, dict):
        raise WebhookRefused("expected a JSON object")
    if esp == "postmark" and not isinstance(payload.get("RecordType"), str):
        raise WebhookRefused("Postmark event without RecordType")
    if esp == "amazon_ses" and not isinstance(payload.get("Message"), str):
        raise WebhookRefused("SNS message without a Message string")
    return payload


def _authenticate(request: HttpRequest, esp: str) -> str:
    """Authenticate and shape-check the request. Returns a claimed once-only cache key to release on failure
    (Mailgun's token), or "". Raises WebhookRefused."""
    if not _basic_auth_ok(request):
        raise WebhookRefused("missing or wrong basic auth")
    payload = _payload(request, esp)
    if esp == "amazon_ses":
        sns_verify(payload)
    elif esp == "mailgun":
        key = get_anymail_setting("webhook_signing_key", esp_name="mailgun", default=None, allow_bare=True)
        key = key or get_anymail_setting("api_key", esp_name="mailgun", default="", allow_bare=True)
        return mailgun_verify(payload, key)
    return ""


def _refused(esp: str, reason: str) -> HttpResponse:
    logger.warning("%s webhook refused: %s", esp, reason)
    return HttpResponseBadRequest("refused", content_type="text/plain")


def _guarded(view, esp: str):
    @wraps(view)  # keeps csrf_exempt and the rest of the view's attributes
    def guarded(request, *args, **kwargs):
        if not _configured(esp):
            raise Http404("webhook not configured")
        if request.method != "POST":
            return view(request, *args, **kwargs)  # anymail answers HEAD (an ESP's check) and refuses the rest
        if esp == "amazon_ses" and not request.META.get("HTTP_AUTHORIZATION"):
            # SNS sends the credentials only after a 401 that asks for them.
            response = HttpResponse(status=401)
            response["WWW-Authenticate"] = 'Basic realm="Anymail WEBHOOK_SECRET"'
            return response
        try:
            once_key = _authenticate(request, esp)
        except WebhookRefused as exc:
            return _refused(esp, str(exc))
        try:
            with transaction.atomic():  # a body that fails halfway records nothing
                return view(request, *args, **kwargs)
        except (AnymailError, SuspiciousOperation, ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
            if once_key:
                cache.delete(once_key)
            return _refused(esp, f"{exc.__class__.__name__}: {exc}")
        except Exception:
            if once_key:
                cache.delete(once_key)  # the ESP retries the same signed event: let it in
            raise

    return guarded


def tracking_urlpatterns() -> list[URLPattern]:
    patterns = []
    for pattern in anymail_urls.urlpatterns:
        esp = (pattern.name or "").removesuffix("_tracking_webhook")
        if esp in ESPS:
            guarded = _guarded(pattern.callback, esp)
            patterns.append(URLPattern(pattern.pattern, guarded, pattern.default_args, pattern.name))
    return patterns
