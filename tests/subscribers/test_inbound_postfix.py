"""End to end through a real Postfix: an issue sent to a local user who does not exist, Postfix's own DSN (sent to
the delivery's VERP address) captured and piped into `manage.py receive_mail`, the address suppressed.

Postfix comes from Debian's package (.ci/run installs it, "Local only": loopback, no relaying). CI treats a skip as
a failure, so there this test always runs."""

import os
import subprocess
import sys
import uuid

import pytest

from newsletter.models import Delivery
from subscribers.models import ConsentEvent, Subscriber, Suppression
from tests.conftest import ROOT, child_env
from tests.factories import SubscriberFactory, SubscriptionFactory, issue_to_send

from .postfix import BOUNCE_DOMAIN, postfix_binary, postfix_configure

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_issue_bounced_by_a_real_postfix_suppresses_the_address(
    smtp_server, settings, require, wait_for, start, drain
):
    require(postfix_binary() is not None and os.geteuid() == 0, "Postfix (apt-get install postfix), run as root")
    # The capture server plays our MX for the bounce domain; Postfix sends the DSN there.
    postfix_configure(smtp_server.port)
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 25  # the issue goes out through Postfix
    settings.MASTHEAD = {**settings.MASTHEAD, "BOUNCE_DOMAIN": BOUNCE_DOMAIN, "INBOUND_RATE_PER_MINUTE": 0}
    issue = issue_to_send()
    ghost = SubscriberFactory(email=f"ghost-{uuid.uuid4().hex[:10]}@localhost")
    SubscriptionFactory(subscriber=ghost, newsletter=issue.newsletter)
    start(issue)
    drain(issue)
    delivery = Delivery.objects.get(issue=issue, subscriber=ghost)
    assert delivery.status == Delivery.Status.SENT  # Postfix accepted it; local delivery fails afterwards

    dsn = wait_for(lambda: list(smtp_server.messages), timeout=60, what="Postfix's bounce")[0]
    assert dsn.mail_from in ("", "<>")  # a DSN has the null sender (RFC 3464), so it can never bounce back
    verp = dsn.rcpt_tos[0]
    assert verp.startswith("bounces+") and verp.endswith("@" + BOUNCE_DOMAIN)
    assert b"report-type=delivery-status" in dsn.data and b"Postfix" in dsn.data

    env = child_env(BOUNCE_DOMAIN=BOUNCE_DOMAIN, INBOUND_RATE_PER_MINUTE="0")
    run = subprocess.run(
        [sys.executable, "manage.py", "receive_mail", "--recipient", verp, "--sender", ""],
        input=dsn.data,
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr.decode()
    ghost.refresh_from_db()
    assert ghost.status == Subscriber.Status.SUPPRESSED
    assert Suppression.objects.get().reason == Suppression.Reason.HARD_BOUNCE
    assert ConsentEvent.objects.get(kind=ConsentEvent.Kind.SUPPRESS).source == ConsentEvent.Source.INBOUND
    delivery.refresh_from_db()
    assert (delivery.bounce_kind, delivery.bounce_code) == (Delivery.BounceKind.HARD, "5.1.1")
    assert "unknown user" in delivery.bounce_text
