"""Signed Amazon SNS messages for the SES webhook tests: a locally made RSA key and certificate stand in for
AWS's, served by replacing the certificate fetcher (the URL still has to match the AWS host pattern)."""

import base64
import datetime
import json
from functools import cache

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem"


@cache
def key_and_pem() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def sns_certificates(monkeypatch):
    """The certificate fetcher, answering CERT_URL with the local certificate; returns the URLs it was asked."""
    from subscribers.services import esp_auth

    asked: list[str] = []

    def fetch(url: str) -> bytes:
        asked.append(url)
        return key_and_pem()[1]

    monkeypatch.setattr(esp_auth, "sns_certificate_fetch", fetch)
    return asked


def signed(body: dict, version: str = "1", cert_url: str = CERT_URL) -> dict:
    """`body` (an SNS Notification) with SignatureVersion, SigningCertURL and a valid Signature."""
    body = {**body, "SignatureVersion": version, "SigningCertURL": cert_url}
    fields = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
    text = "".join(f"{k}\n{body[k]}\n" for k in fields if k in body)
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key_and_pem()[0].sign(text.encode(), padding.PKCS1v15(), algorithm)
    return {**body, "Signature": base64.b64encode(signature).decode()}


def ses_notification(message: dict, sns_id: str) -> dict:
    return {"Type": "Notification", "MessageId": sns_id, "TopicArn": "arn:aws:sns:eu-west-1:1:ses",
            "Message": json.dumps(message), "Timestamp": "2026-11-25T10:00:00.000Z"}  # fmt: skip
