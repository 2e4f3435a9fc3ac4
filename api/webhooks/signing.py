"""Standard Webhooks signatures (https://www.standardwebhooks.com/): HMAC-SHA256 over
`{webhook-id}.{webhook-timestamp}.{body}` with the endpoint's secret, sent as `v1,<base64>`; during a secret
rotation one signature per secret, separated by spaces, so receivers holding either secret accept the request."""

from datetime import datetime

from django.utils import timezone
from standardwebhooks.webhooks import Webhook


def signature_headers(msg_id: str, body: str, secrets: list[str], at: datetime | None = None) -> dict[str, str]:
    at = at or timezone.now()
    signatures = " ".join(Webhook(secret).sign(msg_id, at, body) for secret in secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
    }


def endpoint_secrets(endpoint, at: datetime | None = None) -> list[str]:
    """The secrets that sign a request to `endpoint` now: the current one, and the previous one until its rotation
    window ends."""
    at = at or timezone.now()
    secrets = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_until and endpoint.previous_secret_until > at:
        secrets.append(endpoint.previous_secret)
    return secrets
