"""API tokens: created in the admin and shown once, stored as a digest, revocable, with a last-used time."""

import secrets
from datetime import timedelta

from django.utils import timezone

from api.models import TOKEN_PREFIX, ApiToken, token_digest

# last_used_at is written at most this often per token: a busy CMS must not turn every read into a write.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def api_token_issue(token: ApiToken) -> str:
    """Give an unsaved token (user and name set) its secret and save it. Returns the token itself, which is never
    stored and cannot be shown again."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token.prefix, token.digest = raw[:10], token_digest(raw)
    token.save()
    return raw


def api_token_create(user, name: str) -> tuple[ApiToken, str]:
    token = ApiToken(user=user, name=name)
    return token, api_token_issue(token)


def api_token_authenticate(raw: str) -> ApiToken | None:
    """The live token for `raw` (not revoked, its user active), or None. Records when it was last used."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 100:
        return None
    token = ApiToken.objects.select_related("user").filter(digest=token_digest(raw), revoked_at__isnull=True).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def api_token_revoke(token: ApiToken) -> bool:
    """Revoke for good (the next request with it gets 401). Returns whether this call revoked it."""
    changed = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    return bool(changed)
