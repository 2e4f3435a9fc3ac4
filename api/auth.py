"""Bearer-token authentication for the API, per-token rate limits, and permission checks.

A token acts as its user: `request.auth` is the user, so every operation checks the user's own Django
permissions (an editor's token cannot send an issue). Limits use django-ratelimit on the shared cache, like the
public forms: API_RATE_PER_TOKEN per token, API_AUTH_FAILURES_PER_IP failed attempts per
client address (guessing tokens is slowed down before it starts).
"""

from django_ratelimit.core import get_usage
from ninja.errors import Throttled
from ninja.security import HttpBearer

from api.errors import ApiProblem
from api.services.tokens import api_token_authenticate
from newsletter.conf import app_settings


def _limited(request, group: str, key: str, rate: str) -> None:
    usage = get_usage(request, group=group, key=lambda _group, _request: key, rate=rate, increment=True)
    if usage and usage["should_limit"]:
        raise Throttled(wait=max(1, int(usage["time_left"])))


class TokenAuth(HttpBearer):
    openapi_description = "An API token created in the admin (API and webhooks → API tokens)."

    def authenticate(self, request, token: str):
        api_token = api_token_authenticate(token)
        if api_token is None:
            client = request.META.get("REMOTE_ADDR", "")
            _limited(request, "api:auth-failures", client, app_settings.API_AUTH_FAILURES_PER_IP)
            return None
        _limited(request, "api:token", str(api_token.pk), app_settings.API_RATE_PER_TOKEN)
        request.api_token = api_token
        return api_token.user


def require(request, *permissions: str) -> None:
    """403 unless the token's user has every one of `permissions` (e.g. "newsletter.send_issue")."""
    missing = [p for p in permissions if not request.auth.has_perm(p)]
    if missing:
        raise ApiProblem(
            403,
            f"This token's user lacks the permission {', '.join(missing)}; ask an administrator to grant it.",
            kind="forbidden",
        )
