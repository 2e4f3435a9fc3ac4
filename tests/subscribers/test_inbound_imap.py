"""The IMAP door against a real IMAP server: Debian's Dovecot, run for the test with its own configuration on a
loopback port (implicit TLS, a self-signed certificate), a maildir in a temporary folder. .ci/run installs it."""

import shutil
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from imapclient import IMAPClient

from subscribers import links
from subscribers.models import QuarantinedMail, Subscriber
from subscribers.services.inbound.mailbox import bounces_fetch, mailbox_config
from tests.conftest import free_port
from tests.newsletter.delivery.test_transports_smtp_tls import self_signed

from .inbound_helpers import fixture_bytes, inbound_settings
from .test_inbound import sent_delivery

pytestmark = pytest.mark.django_db

DOVECOT_CONF = """
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
auth_mechanisms = plain
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/home/%u
}}
mail_location = maildir:~/Maildir
first_valid_uid = 1
first_valid_gid = 1
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


@pytest.fixture
def dovecot(tmp_path, require):
    binary = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)
    require(binary is not None, "Dovecot (apt-get install dovecot-imapd)")
    # Its own folder, readable by Dovecot's unprivileged processes (pytest's tmp_path is root-only).
    root = Path(tempfile.mkdtemp(prefix="masthead-dovecot-"))
    root.chmod(0o755)
    for sub in ("run", "state", "home"):
        (root / sub).mkdir(parents=True)
    shutil.chown(root / "home", "dovecot", "dovecot")
    cert, key = self_signed(tmp_path)
    port = free_port()
    (root / "users").write_text("bounces:{PLAIN}mailbox-secret\n")
    conf = root / "dovecot.conf"
    conf.write_text(DOVECOT_CONF.format(root=root, cert=cert, key=key, port=port))
    process = subprocess.Popen([binary, "-F", "-c", str(conf)], stderr=subprocess.PIPE)
    context = ssl.create_default_context(cafile=str(cert))
    for _ in range(100):
        try:
            with IMAPClient("127.0.0.1", port=port, ssl=True, ssl_context=context, timeout=5):
                break
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"dovecot exited: {process.stderr.read().decode()} {(root / 'dovecot.log').read_text()}")
            time.sleep(0.1)
    yield {"port": port, "context": context, "url": f"imaps://bounces:mailbox-secret@127.0.0.1:{port}/INBOX"}
    process.terminate()
    process.wait(timeout=10)
    shutil.rmtree(root, ignore_errors=True)


def test_fetch_bounces_acts_on_the_mailbox_and_deletes_only_what_it_processed(dovecot, newsletter, settings):
    inbound_settings(settings)
    settings.MASTHEAD = {**settings.MASTHEAD, "INBOUND_RATE_PER_MINUTE": 2}
    delivery = sent_delivery(newsletter)
    later = sent_delivery(newsletter, email="later@example.net")
    with IMAPClient("127.0.0.1", port=dovecot["port"], ssl=True, ssl_context=dovecot["context"]) as imap:
        imap.login("bounces", "mailbox-secret")
        imap.append(
            "INBOX", fixture_bytes("gmail_dsn.eml", links.bounce_address(delivery.pk), delivery.subscriber.email)
        )
        imap.append("INBOX", b"Subject: a question\r\nFrom: someone@example.net\r\n\r\nHello?\r\n")
        imap.append("INBOX", fixture_bytes("qmail.eml", links.bounce_address(later.pk), later.subscriber.email))

    config = mailbox_config(dovecot["url"])
    result = bounces_fetch(config, ssl_context=dovecot["context"])
    assert (result.seen, result.acted, result.kept) == (3, 2, 1)  # the third hit the rate limit: kept
    assert Subscriber.objects.get(pk=delivery.subscriber_id).status == Subscriber.Status.SUPPRESSED
    assert QuarantinedMail.objects.get().door == "imap"
    with IMAPClient("127.0.0.1", port=dovecot["port"], ssl=True, ssl_context=dovecot["context"]) as imap:
        imap.login("bounces", "mailbox-secret")
        imap.select_folder("INBOX")
        left = imap.fetch(imap.search("ALL"), ["BODY.PEEK[]"])
        assert len(left) == 1 and b"qmail-send" in next(iter(left.values()))[b"BODY[]"]

    settings.MASTHEAD = {**settings.MASTHEAD, "INBOUND_RATE_PER_MINUTE": 0}
    assert bounces_fetch(config, ssl_context=dovecot["context"]).acted == 1  # the next run takes it
    assert Subscriber.objects.get(pk=later.subscriber_id).status == Subscriber.Status.SUPPRESSED


def test_fetch_bounces_command_says_what_is_wrong(dovecot, settings):
    settings.MASTHEAD = {**settings.MASTHEAD, "BOUNCE_IMAP_URL": ""}
    with pytest.raises(CommandError, match="BOUNCE_IMAP_URL is not set"):
        call_command("fetch_bounces")
    settings.MASTHEAD = {**settings.MASTHEAD, "BOUNCE_IMAP_URL": "ftp://nobody@example.org/"}
    with pytest.raises(CommandError, match="must look like"):
        call_command("fetch_bounces")
    wrong = dovecot["url"].replace("mailbox-secret", "wrong")
    settings.MASTHEAD = {**settings.MASTHEAD, "BOUNCE_IMAP_URL": wrong, "SMTP_VERIFY_TLS": False}
    with pytest.raises(CommandError, match="127.0.0.1"):
        call_command("fetch_bounces")
