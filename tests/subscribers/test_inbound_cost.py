"""What one message that came back costs the database: an upper bound on the statements a hard bounce, a soft
bounce and a complaint take, so a change that adds a query per message fails here rather than in the bench."""

import os

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from newsletter.models import Delivery
from subscribers import links
from subscribers.models import MailEvent, Subscriber
from subscribers.services.inbound import inbound_receive

from .inbound_helpers import FBL_ADDRESS, fixture_bytes, inbound_settings
from .test_inbound import sent_delivery

pytestmark = pytest.mark.django_db

# Statements per message as the tests see them: the message's transaction is a savepoint pair here (BEGIN and
# COMMIT in production), plus the webhook endpoints' lookup. A hard bounce took 22 before the inbound path lost
# its redundant savepoints and lookups (mail_event_store's check-then-insert, the event's re-read under lock,
# the subscriber read twice, the event inserted then updated); the complaint includes the issue's complaint
# check and its pause.
HARD_BOUNCE_MAX = 11
SOFT_BOUNCE_MAX = 9
COMPLAINT_MAX = 19


@pytest.fixture(autouse=True)
def _inbound(settings):
    inbound_settings(settings)


def _cost(delivery, name, recipient=None):
    verp = links.bounce_address(delivery.pk)
    raw = fixture_bytes(name, verp, delivery.subscriber.email, delivery.message_id)
    with CaptureQueriesContext(connection) as queries:
        outcome = inbound_receive(raw, recipient=recipient or verp)
    if os.environ.get("INBOUND_SHOW_QUERIES"):
        print(f"\n{name}: {len(queries)} statements")
        for q in queries.captured_queries:
            print("  ", q["sql"][:220])
    return outcome, len(queries)


def test_a_hard_bounce_costs_a_bounded_number_of_statements(newsletter):
    delivery = sent_delivery(newsletter)
    outcome, count = _cost(delivery, "gmail_dsn.eml")
    assert outcome.action == "suppressed (hard bounce)"
    assert Subscriber.objects.get(pk=delivery.subscriber_id).status == Subscriber.Status.SUPPRESSED
    assert Delivery.objects.get(pk=delivery.pk).bounce_code == "5.1.1"
    # The event, written once, says what an event acted on says.
    event = MailEvent.objects.get(delivery=delivery)
    assert (event.issue_id, event.subscriber_id) == (delivery.issue_id, delivery.subscriber_id)
    assert event.processed_at is not None
    assert count <= HARD_BOUNCE_MAX, f"a hard bounce took {count} statements (at most {HARD_BOUNCE_MAX})"


def test_a_soft_bounce_costs_a_bounded_number_of_statements(newsletter):
    delivery = sent_delivery(newsletter)
    outcome, count = _cost(delivery, "gmail_over_quota.eml")
    assert outcome.action.startswith("soft bounce")
    assert count <= SOFT_BOUNCE_MAX, f"a soft bounce took {count} statements (at most {SOFT_BOUNCE_MAX})"


def test_a_complaint_costs_a_bounded_number_of_statements(newsletter):
    delivery = sent_delivery(newsletter)
    outcome, count = _cost(delivery, "yahoo_arf.eml", recipient=FBL_ADDRESS)
    assert outcome.action.startswith("suppressed (complaint)")
    assert count <= COMPLAINT_MAX, f"a complaint took {count} statements (at most {COMPLAINT_MAX})"
