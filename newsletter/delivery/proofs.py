"""Proofs: the issue as it renders now (or as frozen, once sending), sent to a few editors' addresses with the
subject marked [TEST] and links that unsubscribe nobody. Through the same transport (and DKIM) as the issue."""

from __future__ import annotations

import secrets

from newsletter.delivery.messages import (
    TEST_TOKEN,
    Recipient,
    dkim_enabled,
    dkim_sign,
    personalise,
    skeleton_build,
    wire_address,
)
from newsletter.delivery.transports import Outcome, TransportError, transport_open
from newsletter.models import Issue
from newsletter.services.rendering import issue_rendered


def proof_send(issue_id: int, addresses: list[str]) -> dict[str, str]:
    """Send the proof now. Returns each address's outcome ("sent" or the server's code and text)."""
    issue = Issue.objects.select_related("newsletter").get(pk=issue_id)
    skeleton = skeleton_build(issue, issue_rendered(issue), subject_prefix="[TEST] ")
    results: dict[str, str] = {}
    try:
        transport = transport_open()
    except TransportError as exc:
        return {address: str(exc) for address in addresses}
    try:
        for address in addresses:
            recipient = Recipient(secrets.randbits(40), wire_address(address), "", TEST_TOKEN)
            message = personalise(skeleton, recipient)
            data = dkim_sign(message.data, skeleton.mail_from) if dkim_enabled() else message.data
            result = transport.send(skeleton, recipient, message, data)
            sent = result.outcome == Outcome.SENT
            results[address] = Outcome.SENT.value if sent else f"{result.code} {result.text}".strip()
    finally:
        transport.close()
    return results
