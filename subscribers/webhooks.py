"""django-anymail's tracking webhooks for Amazon SES, Postmark, Mailgun and SendGrid, mounted under
/webhooks/anymail/<esp>/tracking/ (add an ESP to ESPS once its bounce classification in bounces.py is checked).

Anymail accepts unauthenticated webhooks (with a warning) when no WEBHOOK_SECRET is set; a forged "complaint"
would then suppress any address and pause any issue. So these URLs answer 404 until the operator sets the
basic-auth secret (ANYMAIL="WEBHOOK_SECRET=user:password" in the environment, the same user:password put into
the ESP's webhook URL), and Mailgun's additionally until its signing key is set (MAILGUN_WEBHOOK_SIGNING_KEY).
"""

from functools import wraps

from anymail import urls as anymail_urls
from anymail.utils import get_anymail_setting
from django.http import Http404
from django.urls import URLPattern

ESPS = ("amazon_ses", "postmark", "mailgun", "sendgrid")
EXTRA_KEYS = {"mailgun": ("webhook_signing_key", "api_key")}


def _configured(esp: str) -> bool:
    if not get_anymail_setting("webhook_secret", default=None):
        return False
    keys = EXTRA_KEYS.get(esp)
    return not keys or any(get_anymail_setting(k, esp_name=esp, default=None, allow_bare=True) for k in keys)


def _guarded(view, esp: str):
    @wraps(view)  # keeps csrf_exempt and the rest of the view's attributes
    def guarded(request, *args, **kwargs):
        if not _configured(esp):
            raise Http404("webhook not configured")
        return view(request, *args, **kwargs)

    return guarded


def tracking_urlpatterns() -> list[URLPattern]:
    patterns = []
    for pattern in anymail_urls.urlpatterns:
        esp = (pattern.name or "").removesuffix("_tracking_webhook")
        if esp in ESPS:
            guarded = _guarded(pattern.callback, esp)
            patterns.append(URLPattern(pattern.pattern, guarded, pattern.default_args, pattern.name))
    return patterns
