"""Is an ESP webhook genuine? What anymail does not check: Amazon SNS message signatures, and that a Mailgun
signature block is fresh and used once (its HMAC covers only a timestamp and a token, not the event).

Each check raises WebhookRefused (the view answers 400 and records nothing).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.core.cache import cache

from newsletter.conf import app_settings


class WebhookRefused(ValueError):
    """The webhook is not genuine or not well-formed; the message says why (for the log, not the ESP)."""


# --- Amazon SNS (SES notifications) -----------------------------------------------------------------------------

# The fields each message type signs, in this order (AWS: "Verifying the signatures of Amazon SNS messages").
_SNS_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
_SNS_OPTIONAL = {"Subject"}
_SNS_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
_CERT_CACHE_SECONDS = 24 * 3600


def sns_certificate_fetch(url: str) -> bytes:
    """The PEM at `url` (an allowed AWS host: see sns_verify). Replaced in tests by a local certificate."""
    response = requests.get(url, timeout=5, allow_redirects=False)
    if response.status_code != 200:
        raise WebhookRefused(f"signing certificate answered {response.status_code}")
    return response.content


def _sns_certificate(url: str) -> x509.Certificate:
    key = "masthead:sns-cert:" + hashlib.sha256(url.encode()).hexdigest()
    pem = cache.get(key)
    if pem is None:
        try:
            pem = sns_certificate_fetch(url)
        except requests.RequestException as exc:
            raise WebhookRefused(f"signing certificate unavailable: {exc.__class__.__name__}") from exc
        cache.set(key, pem, _CERT_CACHE_SECONDS)
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        cache.delete(key)
        raise WebhookRefused("signing certificate is not a PEM certificate") from exc


def sns_verify(message: dict) -> None:
    """Check an SNS message's signature: the certificate comes from an https URL on an AWS SNS host
    (app_settings.SNS_CERT_URL_PATTERN), is cached for a day, and its RSA key must have signed the message's
    fields. Raises WebhookRefused."""
    kind = message.get("Type")
    fields = _SNS_SIGNED_FIELDS.get(kind)
    if fields is None:
        raise WebhookRefused(f"unknown SNS message type {kind!r}")
    algorithm = _SNS_HASHES.get(str(message.get("SignatureVersion", "")))
    if algorithm is None:
        raise WebhookRefused("unknown SNS SignatureVersion")
    url = message.get("SigningCertURL")
    if not isinstance(url, str) or not re.fullmatch(app_settings.SNS_CERT_URL_PATTERN, url):
        raise WebhookRefused("SigningCertURL is not an Amazon SNS certificate URL")
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookRefused("Signature is not base64") from exc
    parts = []
    for name in fields:
        if name not in message:
            if name in _SNS_OPTIONAL:
                continue
            raise WebhookRefused(f"SNS message lacks {name}")
        if not isinstance(message[name], str):
            raise WebhookRefused(f"SNS {name} is not a string")
        parts.append(f"{name}\n{message[name]}\n")
    public_key = _sns_certificate(url).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise WebhookRefused("signing certificate has no RSA key")
    try:
        public_key.verify(signature, "".join(parts).encode(), padding.PKCS1v15(), algorithm())
    except InvalidSignature as exc:
        raise WebhookRefused("SNS signature does not verify") from exc


# --- Mailgun ----------------------------------------------------------------------------------------------------


def mailgun_verify(payload: dict, signing_key: str) -> str:
    """Check a Mailgun JSON webhook: the signature block's HMAC, its timestamp within
    app_settings.MAILGUN_WEBHOOK_MAX_AGE_SECONDS of now, the event not later than its signature, and the token
    not seen before (claimed in the shared cache for twice the window). Returns the claimed cache key, to
    release should the event fail to be recorded (so the ESP's retry is accepted). Raises WebhookRefused."""
    block, event = payload.get("signature"), payload.get("event-data")
    if not isinstance(block, dict) or not isinstance(event, dict):
        raise WebhookRefused("Mailgun payload lacks its signature or event-data object")
    timestamp, token, signature = (block.get(k) for k in ("timestamp", "token", "signature"))
    if not all(isinstance(v, str) and v for v in (timestamp, token, signature)):
        raise WebhookRefused("Mailgun signature block is incomplete")
    expected = hmac.new(signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise WebhookRefused("Mailgun signature does not verify")
    window = app_settings.MAILGUN_WEBHOOK_MAX_AGE_SECONDS
    try:
        signed_at = int(timestamp)
        happened_at = float(event.get("timestamp"))
    except (TypeError, ValueError) as exc:
        raise WebhookRefused("Mailgun timestamps are not numbers") from exc
    if abs(time.time() - signed_at) > window:
        raise WebhookRefused("Mailgun signature is outside the time window")
    if happened_at > signed_at + 60:
        raise WebhookRefused("Mailgun event is dated after its signature")
    key = "masthead:mailgun-token:" + hashlib.sha256(token.encode()).hexdigest()
    if not cache.add(key, 1, timeout=2 * window):
        raise WebhookRefused("Mailgun token already used")
    return key
