"""SMTP PIPELINING across messages: the next envelope goes out with this message's content (one round trip per
message), and an envelope announced but never used is dropped with its connection, never sent as an empty message.
Against a real aiosmtpd server that advertises PIPELINING (it always accepts pipelined commands)."""

from dataclasses import dataclass

import pytest

from newsletter import delivery
from newsletter.delivery import batch as batch_module
from newsletter.delivery.messages import Recipient, personalise
from newsletter.delivery.transports import Outcome, SmtpTransport
from newsletter.models import Delivery, Issue
from tests.conftest import RecordingHandler
from tests.factories import issue_to_send, subscribers_bulk

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class PipeliningHandler(RecordingHandler):
    """Advertises PIPELINING, and counts the connections and the EHLOs it was sent."""

    ehlos: int = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.ehlos += 1
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]


@pytest.fixture
def pipelining_server(smtp_servers) -> PipeliningHandler:
    return smtp_servers(PipeliningHandler())


def test_a_batch_over_one_pipelining_connection_sends_each_reader_exactly_once(
    pipelining_server, counts, received_by_address, start
):
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 60)
    start(issue)
    result = delivery.deliveries_send_batch(issue.pk)
    assert result.sent == 60 and counts(issue)["sent"] == 60
    seen = received_by_address(pipelining_server)
    assert len(seen) == 60 and set(seen.values()) == {1}
    assert pipelining_server.ehlos == 1  # one connection for the whole batch: no envelope was dropped
    assert all(m.data.strip() for m in pipelining_server.messages)


def test_the_envelope_announced_before_a_pause_is_dropped_with_the_connection_not_sent_empty(
    pipelining_server, counts, received_by_address, start, monkeypatch
):
    """The batch stops between two messages (a pause): the next reader's envelope was already pipelined with the
    last message. The server must get no message for that reader, empty or not, and the reader stays pending."""
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 30)
    start(issue)
    monkeypatch.setattr(batch_module, "STATUS_CHECK_SECONDS", 0.0)  # look at the status before every message
    real_send = SmtpTransport.send

    def send_then_pause(self, *args, **kwargs):
        result = real_send(self, *args, **kwargs)
        if len(pipelining_server.messages) == 10:
            Issue.objects.filter(pk=issue.pk).update(status=Issue.Status.PAUSED)
        return result

    monkeypatch.setattr(SmtpTransport, "send", send_then_pause)
    result = delivery.deliveries_send_batch(issue.pk)
    assert result.sent == 10 and result.stopped == batch_module.StopReason.PAUSED
    c = counts(issue)
    assert c["sent"] == 10 and c["pending"] == 20 and c["sending"] == 0
    assert len(pipelining_server.messages) == 10 and all(m.data.strip() for m in pipelining_server.messages)
    Issue.objects.filter(pk=issue.pk).update(status=Issue.Status.SENDING)
    monkeypatch.setattr(SmtpTransport, "send", real_send)
    delivery.deliveries_send_batch(issue.pk)
    seen = received_by_address(pipelining_server)
    assert len(seen) == 30 and set(seen.values()) == {1}


def test_a_refused_recipient_whose_envelope_was_pipelined_fails_alone(pipelining_server, counts, start):
    issue = issue_to_send()
    readers = subscribers_bulk(issue.newsletter, 20)
    refused = readers[7].email
    pipelining_server.rcpt_reply = lambda address: "550 5.1.1 No such user" if address == refused else None
    start(issue)
    result = delivery.deliveries_send_batch(issue.pk)
    assert result.sent == 19 and result.failed == 1
    failed = Delivery.objects.get(issue=issue, status=Delivery.Status.FAILED)
    assert failed.subscriber.email == refused and failed.error_code == "550"
    assert len(pipelining_server.messages) == 19 and pipelining_server.ehlos == 1


def test_an_announced_envelope_for_someone_else_reconnects_and_sends_the_right_reader(pipelining_server):
    """The transport was told the next reader would be A, then asked to send to B: the primed transaction is
    dropped with its connection (A gets nothing), B gets the message over a new connection."""
    issue = issue_to_send()
    skeleton = batch_module.skeleton_for(Issue.objects.select_related("newsletter").get(pk=issue.pk))
    people = [Recipient(n, f"r{n}@example.com", f"R{n}", f"{n:08x}-0000-4000-8000-{n:012x}") for n in (1, 2, 3)]
    transport = SmtpTransport()
    transport.open()
    first = personalise(skeleton, people[0])
    assert transport.send(skeleton, people[0], first, first.data, upcoming=people[1]).outcome == Outcome.SENT
    third = personalise(skeleton, people[2])
    assert transport.send(skeleton, people[2], third, third.data).outcome == Outcome.SENT
    transport.close()
    got = [m.rcpt_tos for m in pipelining_server.messages]
    assert got == [["r1@example.com"], ["r3@example.com"]] and pipelining_server.ehlos == 2


def test_a_server_without_pipelining_is_sent_one_command_at_a_time(smtp_server, counts, start):
    issue = issue_to_send()
    subscribers_bulk(issue.newsletter, 15)
    start(issue)
    assert delivery.deliveries_send_batch(issue.pk).sent == 15
    assert len(smtp_server.messages) == 15


def test_the_pipelined_bytes_are_what_rfc_2920_allows(pipelining_server):
    """On the wire: content, then MAIL/RCPT/DATA of the next message in the same write, DATA last."""
    sent: list[bytes] = []
    transport = SmtpTransport()
    transport.open()
    real = transport.smtp.send
    transport.smtp.send = lambda data: (sent.append(data), real(data))[1]
    skeleton = batch_module.skeleton_for(Issue.objects.select_related("newsletter").get(pk=issue_to_send().pk))
    a, b = (Recipient(n, f"r{n}@example.com", "", f"{n:08x}-0000-4000-8000-{n:012x}") for n in (1, 2))
    transport.send(skeleton, a, personalise(skeleton, a), personalise(skeleton, a).data, upcoming=b)
    transport.send(skeleton, b, personalise(skeleton, b), personalise(skeleton, b).data)
    transport.close()
    assert sent[0].startswith(b"MAIL FROM:") and sent[0].endswith(b"DATA\r\n")
    assert b"\r\n.\r\nMAIL FROM:<" in sent[1] and sent[1].endswith(b"RCPT TO:<r2@example.com>\r\nDATA\r\n")
    assert sent[2].endswith(b"\r\n.\r\n")  # the last content: nothing announced after it
