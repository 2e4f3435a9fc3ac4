"""DKIM through the real pipeline: a key generated here, the issue sent to the aiosmtpd server, each received message
verified by dkimpy against the public key as its DNS TXT record would publish it."""

import base64
import re
from email import message_from_bytes, policy

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from newsletter import delivery
from newsletter.models import Article, Delivery
from subscribers.models import Subscriber
from subscribers.services.emails import confirmation_send
from tests.factories import NewsletterFactory, SubscriberFactory, SubscriptionFactory, issue_to_send, subscribers_bulk

pytestmark = pytest.mark.django_db(transaction=True)

SELECTOR, DOMAIN = "mh2026", "news.example.org"
COVERED = ["from", "to", "subject", "date", "message-id", "list-id", "list-unsubscribe", "list-unsubscribe-post"]


@pytest.fixture
def dkim_key(tmp_path, settings):
    """An RSA key on disk, the settings pointing at it, and a dnsfunc answering for its selector only."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "dkim.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    settings.DKIM_PRIVATE_KEY_FILE, settings.DKIM_DOMAIN, settings.DKIM_SELECTOR = str(path), DOMAIN, SELECTOR
    settings.MAIL_DOMAIN = DOMAIN
    asked: list[bytes] = []

    def dnsfunc(name, timeout=5):
        asked.append(name)
        return record if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else None

    dnsfunc.asked = asked
    return dnsfunc


def signature_tags(data: bytes) -> dict[str, str]:
    header = message_from_bytes(data, policy=policy.default)["DKIM-Signature"]
    value = re.sub(r"\s+", "", str(header))
    return dict(part.split("=", 1) for part in value.split(";") if part)


def test_every_message_is_signed_over_the_list_headers_and_verifies(smtp_server, dkim_key, drain, start):
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 5, name="Zoë Ünal")  # a non-ASCII To header is signed as encoded
    start(issue)
    drain(issue)
    assert Delivery.objects.filter(issue=issue, status="sent").count() == 5
    assert len(smtp_server.messages) == 5
    for received in smtp_server.messages:
        assert dkim.verify(received.data, dnsfunc=dkim_key), received.data[:400]
        tags = signature_tags(received.data)
        assert (tags["d"], tags["s"], tags["a"]) == (DOMAIN, SELECTOR, "rsa-sha256")
        signed = [h.strip() for h in tags["h"].lower().split(":")]
        assert set(COVERED) <= set(signed), signed
    assert set(dkim_key.asked) == {f"{SELECTOR}._domainkey.{DOMAIN}.".encode()}


def test_a_message_changed_in_transit_fails_verification(smtp_server, dkim_key, drain, start):
    """The check above could not pass by accident: alter a signed header or the body and verification fails."""
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 1)
    start(issue)
    drain(issue)
    data = smtp_server.messages[0].data
    assert dkim.verify(data, dnsfunc=dkim_key)
    one_click = re.search(rb"<(https?://[^>]+/one-click/)>", data).group(1)
    assert not dkim.verify(data.replace(one_click, b"https://evil.example.net/u/x/one-click/"), dnsfunc=dkim_key)
    assert not dkim.verify(data.replace(b"Watch the vote.", b"Ignore the vote."), dnsfunc=dkim_key)


def test_confirmation_and_test_emails_are_signed_too(smtp_server, dkim_key):
    newsletter = NewsletterFactory(slug="daily-brief", from_email="brief@news.example.org")
    reader = SubscriberFactory(status=Subscriber.Status.PENDING, confirmed_at=None)
    SubscriptionFactory(subscriber=reader, newsletter=newsletter)
    confirmation_send(reader, newsletter)
    issue = issue_to_send()
    assert delivery.proof_send(issue.pk, ["editor@news.example.org"]) == {"editor@news.example.org": "sent"}
    assert len(smtp_server.messages) == 2
    for received in smtp_server.messages:
        assert b"DKIM-Signature:" in received.data
        assert dkim.verify(received.data, dnsfunc=dkim_key), received.data[:400]


def test_dkim_stays_valid_on_long_lines_of_any_script_after_a_relay(smtp_server, dkim_key, settings, drain, start):
    settings.SITE_URL = "https://newsletters.harbour-city-chronicle.example.org/" + "regional-editions/" * 20
    issue = issue_to_send()
    Article.objects.filter(issue_items__issue=issue).update(body_html="<p>" + "新聞速報市議会予算案可決" * 400 + "</p>")
    subscribers_bulk(issue.newsletter, 3)
    start(issue)
    drain(issue)
    assert len(smtp_server.messages) == 3  # a strict server: no line over 998 octets
    for received in smtp_server.messages:
        assert max(len(line) for line in received.data.split(b"\r\n")) <= 998
        assert dkim.verify(received.data, dnsfunc=dkim_key)
