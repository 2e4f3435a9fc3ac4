"""ESP webhooks authenticate before they parse, answer 400 to every malformed body with nothing recorded, verify
SES's SNS message signatures and refuse a Mailgun signature block that is stale or used before."""

import base64
import hashlib
import hmac
import json
import time

import pytest

from subscribers.models import MailEvent, Suppression
from tests.factories import subscribed
from tests.subscribers.sns import CERT_URL, ses_notification, signed

pytestmark = pytest.mark.django_db

SECRET = "hooks:s3cret-webhook-password"
MAILGUN_KEY = "mailgun-signing-key"
AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(SECRET.encode()).decode()}
WRONG = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"hooks:wrong").decode()}
SES_HEADERS = {"HTTP_X_AMZ_SNS_MESSAGE_TYPE": "Notification", "HTTP_X_AMZ_SNS_MESSAGE_ID": "sns-1"}


@pytest.fixture(autouse=True)
def anymail_secrets(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}


def post(client, esp: str, body, auth=AUTH, content_type="application/json", **headers):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(f"/webhooks/anymail/{esp}/tracking/", data, content_type, **auth, **headers)


def ses_complaint(email="victim@example.com", sns_id="sns-1") -> dict:
    message = {"notificationType": "Complaint", "mail": {"messageId": "ses-1", "destination": [email]},
               "complaint": {"complainedRecipients": [{"emailAddress": email}]}}  # fmt: skip
    return ses_notification(message, sns_id)


def mailgun(event: dict, token: str, timestamp: int | None = None, key: str = MAILGUN_KEY) -> dict:
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {"signature": {"timestamp": timestamp, "token": token, "signature": signature}, "event-data": event}


def mailgun_event(recipient: str, kind="complained") -> dict:
    return {"event": kind, "recipient": recipient, "timestamp": time.time() - 2,
            "message": {"headers": {"message-id": "mg-1@example.org"}}}  # fmt: skip


MALFORMED = [
    ("amazon_ses", WRONG, b"{not json", SES_HEADERS),
    ("amazon_ses", AUTH, b"{not json", SES_HEADERS),
    ("amazon_ses", AUTH, b'{"Type": "Notification"}', SES_HEADERS),
    ("postmark", WRONG, b'{"RecordType": "Bounce", "Email": "a@', {}),
    ("postmark", AUTH, b'{"RecordType": "Bounce", "Email": "a@', {}),
    ("postmark", AUTH, b"[1, 2]", {}),
    ("sendgrid", AUTH, b'{"event": "bounce", "email": "a@example.com"}', {}),
    ("sendgrid", AUTH, b'[{"event": "bounce", "email": "a@example.com", "timestamp": "soon"}]', {}),
    ("mailgun", AUTH, b'{"signature": {}}', {}),
    ("mailgun", AUTH, json.dumps(mailgun(None, "t-0")).encode(), {}),
    ("postmark", AUTH, b'{"RecordType": "Bounce", "Email": "\xff\xfe@example.com"}', {}),
    ("sendgrid", AUTH, "[]".encode("utf-16"), {}),
]


@pytest.mark.parametrize(("esp", "auth", "body", "headers"), MALFORMED)
def test_every_malformed_or_unauthenticated_body_is_a_400_that_records_nothing(
    client, newsletter, esp, auth, body, headers
):
    response = post(client, esp, body, auth=auth, content_type="text/plain", **headers)
    assert response.status_code == 400
    assert not MailEvent.objects.exists() and not Suppression.objects.exists()


def test_ses_asks_for_credentials_before_reading_anything(client):
    response = post(client, "amazon_ses", b"{not json", auth={}, content_type="text/plain", **SES_HEADERS)
    assert response.status_code == 401 and "Basic" in response["WWW-Authenticate"]


def test_ses_notifications_need_a_valid_sns_signature(client, newsletter, on_commit, sns_certificates):
    subscribed(newsletter, email="victim@example.com")
    forged = {**signed(ses_complaint()), "Signature": base64.b64encode(b"made up" * 37).decode()}
    tampered = {**signed(ses_complaint("other@example.com")), "Message": ses_complaint()["Message"]}
    elsewhere = signed(ses_complaint(), cert_url="https://evil.example/sns.amazonaws.com/cert.pem")
    lookalike = signed(ses_complaint(), cert_url="https://sns.eu-west-1.amazonaws.com.evil.example/c.pem")
    plain_http = signed(ses_complaint(), cert_url=CERT_URL.replace("https:", "http:"))
    unsigned = ses_complaint()
    for body in (forged, tampered, elsewhere, lookalike, plain_http, unsigned):
        assert post(client, "amazon_ses", body, content_type="text/plain", **SES_HEADERS).status_code == 400
    assert not MailEvent.objects.exists()
    assert set(sns_certificates) <= {CERT_URL}  # only an AWS host's certificate was ever fetched

    for version, sns_id in (("1", "sns-1"), ("2", "sns-2")):
        headers = {**SES_HEADERS, "HTTP_X_AMZ_SNS_MESSAGE_ID": sns_id}
        body = signed(ses_complaint(sns_id=sns_id), version=version)
        with on_commit():
            assert post(client, "amazon_ses", body, content_type="text/plain", **headers).status_code == 200
    assert MailEvent.objects.count() == 2
    assert sns_certificates == [CERT_URL]  # fetched once, then cached


def test_a_mailgun_signature_block_cannot_be_replayed_onto_a_forged_event(client, newsletter, on_commit):
    subscribed(newsletter, email="real@example.com")
    subscribed(newsletter, email="victim@example.com")
    genuine = mailgun(mailgun_event("real@example.com"), "token-0001")
    with on_commit():
        assert post(client, "mailgun", genuine).status_code == 200
    replayed = {**genuine, "event-data": mailgun_event("victim@example.com")}
    assert post(client, "mailgun", replayed).status_code == 400
    stale = mailgun(mailgun_event("victim@example.com"), "token-0002", timestamp=int(time.time()) - 3600)
    assert post(client, "mailgun", stale).status_code == 400
    later = {**mailgun_event("victim@example.com"), "timestamp": time.time() + 3600}
    assert post(client, "mailgun", mailgun(later, "token-0003")).status_code == 400
    assert list(MailEvent.objects.values_list("recipient", flat=True)) == ["real@example.com"]
