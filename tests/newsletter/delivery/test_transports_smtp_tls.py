"""TLS to the SMTP relay is all or nothing: a relay that offers no STARTTLS, or whose certificate does not verify,
defers the batch with the reason, and not one SMTP transaction happens in plaintext or over an unverified link."""

import datetime
import ipaddress
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from newsletter import delivery
from newsletter.delivery.transports import tls_context
from newsletter.models import Delivery
from subscribers.models import Subscriber
from subscribers.services.emails import confirmation_send, export_link_send
from tests.factories import NewsletterFactory, SubscriberFactory, SubscriptionFactory, issue_to_send, subscribers_bulk

pytestmark = pytest.mark.django_db(transaction=True)


def record_mail_commands(handler) -> list[tuple[str, bool]]:
    """Record every MAIL FROM the server sees, and whether the session was encrypted at that moment."""
    seen: list[tuple[str, bool]] = []

    async def handle_MAIL(server, session, envelope, address, mail_options):
        seen.append((address, session.ssl is not None))
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    handler.handle_MAIL = handle_MAIL  # aiosmtpd looks hooks up on the handler per connection
    return seen


def self_signed(tmp_path, name: str = "127.0.0.1"):
    """A self-signed certificate for `name` (an IP address or a host name) and its key, as PEM files."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    try:
        alt = x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        alt = x509.DNSName(name)
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def tls_server(settings, tmp_path, smtp_servers):
    """Factory: an aiosmtpd server with a self-signed certificate, either STARTTLS required (refuses MAIL on a
    plaintext session) or implicit TLS; Django's EMAIL_* settings point at it."""

    def build(implicit: bool = False, cert_name: str = "127.0.0.1"):
        cert, key = self_signed(tmp_path, cert_name)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        options = {"ssl_context": context} if implicit else {"tls_context": context, "require_starttls": True}
        handler = smtp_servers(**options)
        handler.mails = record_mail_commands(handler)
        settings.EMAIL_USE_TLS, settings.EMAIL_USE_SSL = not implicit, implicit
        handler.cert = cert
        return handler

    return build


@pytest.fixture
def send_one_batch(start):
    """send_one_batch(count=3): an issue to `count` readers, started, and one batch of it sent in-process."""

    def send(count: int = 3):
        issue = issue_to_send()
        subscribers_bulk(issue.newsletter, count)
        start(issue)
        return issue, delivery.deliveries_send_batch(issue.pk)

    return send


def assert_deferred_with(issue, reason: str):
    rows = list(Delivery.objects.filter(issue=issue))
    assert rows and {r.status for r in rows} == {Delivery.Status.DEFERRED}
    assert all(reason in r.error_text and r.attempts == 1 and r.next_attempt_at for r in rows), rows[0].error_text


def test_verification_is_on_by_default(settings):
    context = tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_use_tls_against_a_relay_without_starttls_defers_and_sends_nothing_in_plaintext(
    smtp_server, settings, send_one_batch
):
    mails = record_mail_commands(smtp_server)
    settings.EMAIL_USE_TLS = True
    issue, result = send_one_batch()
    assert result.stopped == "transport" and result.deferred == 3 and result.sent == 0
    assert_deferred_with(issue, "STARTTLS extension not supported")
    assert mails == [] and smtp_server.messages == []


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit-tls"])
def test_a_self_signed_certificate_is_an_error_not_a_fallback(tls_server, implicit, send_one_batch):
    server = tls_server(implicit=implicit)
    issue, result = send_one_batch()
    assert result.stopped == "transport" and result.sent == 0
    assert_deferred_with(issue, "CERTIFICATE_VERIFY_FAILED")
    assert server.mails == [] and server.messages == []


def test_trusting_the_relays_own_certificate_delivers_over_tls(tls_server, settings, counts, drain, start):
    server = tls_server()
    settings.MASTHEAD = {**settings.MASTHEAD, "SMTP_TLS_CA_FILE": str(server.cert)}
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 3)
    start(issue)
    drain(issue)
    assert counts(issue)["sent"] == 3 and len(server.messages) == 3
    assert server.mails and all(encrypted for _, encrypted in server.mails)


def test_a_trusted_certificate_for_another_host_name_is_still_refused(tls_server, settings, send_one_batch):
    server = tls_server(cert_name="relay.example.org")
    settings.MASTHEAD = {**settings.MASTHEAD, "SMTP_TLS_CA_FILE": str(server.cert)}
    issue, result = send_one_batch()
    assert_deferred_with(issue, "CERTIFICATE_VERIFY_FAILED")
    assert "IP address mismatch" in Delivery.objects.filter(issue=issue).first().error_text
    assert server.mails == []


def test_the_explicit_opt_out_sends_to_a_local_relay_with_a_self_signed_certificate(
    tls_server, settings, counts, drain, start
):
    server = tls_server()
    settings.MASTHEAD = {**settings.MASTHEAD, "SMTP_VERIFY_TLS": False}
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 2)
    start(issue)
    drain(issue)
    assert counts(issue)["sent"] == 2 and all(encrypted for _, encrypted in server.mails)


def test_confirmation_and_export_emails_use_the_same_tls_settings_as_issues(tls_server, settings):
    """Transactional email goes through the issue transport: the private CA in SMTP_TLS_CA_FILE is trusted for it
    too (Django's own SMTP backend would check only the system CAs and refuse this relay)."""
    server = tls_server()
    settings.MASTHEAD = {**settings.MASTHEAD, "SMTP_TLS_CA_FILE": str(server.cert)}
    newsletter = NewsletterFactory(slug="daily-brief")
    reader = SubscriberFactory(status=Subscriber.Status.PENDING, confirmed_at=None)
    SubscriptionFactory(subscriber=reader, newsletter=newsletter)
    assert confirmation_send(reader, newsletter) == "confirm"
    export_link_send(reader)
    assert len(server.messages) == 2 and all(encrypted for _, encrypted in server.mails)
    assert {tuple(m.rcpt_tos) for m in server.messages} == {(reader.email,)}


def test_transactional_email_refuses_an_unverified_relay(tls_server):
    tls_server()
    newsletter = NewsletterFactory(slug="daily-brief")
    reader = SubscriberFactory(status=Subscriber.Status.PENDING, confirmed_at=None)
    SubscriptionFactory(subscriber=reader, newsletter=newsletter)
    with pytest.raises(ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):  # retried by the task, never plaintext
        confirmation_send(reader, newsletter)
